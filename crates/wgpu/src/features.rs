//! What calls with constraints, logprobs or truncation add to a plain call: pass 1 runs the features
//! epilogue (shaders/sample_features.wgsl) over a table of each row's constraints, and leaves per
//! (tile, row) a log-normaliser partial, merged here in tile order so that results are
//! deterministic, for top-N logprobs the tile's best keys, merged on the device by
//! shaders/top.wgsl, and the scaled logits of truncated rows (truncation.rs).

use flashsampling_core::constraints::RowTransform;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::{validate, Request, Result, RowOutputs};

use crate::context::Context;
use crate::truncation::{Finishes, TruncatedRows};
use crate::workspace::{FeatureSizes, FeatureSpace};

/// The mask word of a row without a mask.
const NO_MASK: u32 = u32::MAX;

/// The shader's `table` as flat words: one `vec4<u32>` entry per row, then the adjustments (one
/// entry each), then the masks; every row keeps a top-N list of `top_n` keys.
pub(crate) fn table(transforms: &[RowTransform<'_>], top_n: u32) -> Vec<u32> {
    let batch = transforms.len();
    let adjustments: usize = transforms.iter().map(|t| t.adjustments().len()).sum();
    let first_mask_word = 4 * (batch + adjustments);
    let mut rows = Vec::with_capacity(4 * batch);
    let mut entries = Vec::with_capacity(4 * adjustments);
    let mut masks = Vec::new();
    for t in transforms {
        let begin = batch + entries.len() / 4;
        entries.extend(
            t.adjustments()
                .iter()
                .flat_map(|&(token, pos, neg, added)| [token, pos.to_bits(), neg.to_bits(), added.to_bits()]),
        );
        let mask = t.allowed().map_or(NO_MASK, |m| {
            let at = first_mask_word + masks.len();
            masks.extend_from_slice(m);
            at as u32
        });
        rows.extend([begin as u32, (batch + entries.len() / 4) as u32, mask, top_n]);
    }
    rows.extend(entries);
    rows.extend(masks);
    rows
}

/// Each row's log-normaliser from `partials[tile * batch + b]`, `(max y, Σ exp(y - max y))` as
/// f32 bits, merged in tile order.
pub(crate) fn merge_norms(partials: &[u8], norms: &mut [LogSumExp]) {
    let batch = norms.len();
    norms.fill(LogSumExp::EMPTY);
    for tile in partials.chunks_exact(8 * batch) {
        for (norm, p) in norms.iter_mut().zip(tile.chunks_exact(8)) {
            let word = |i: usize| f32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
            *norm = norm.merge(LogSumExp { max: word(0), sum: word(4).into() });
        }
    }
}

/// One call's use of the features epilogue, its buffers made ready.
pub(crate) struct FeatureCall<'a> {
    /// Bind group 1 of pass 1, and the top-N merge's group.
    pub epilogue: wgpu::BindGroup,
    merge: wgpu::BindGroup,
    batch: usize,
    top_n: usize,
    norms_bytes: u64,
    pub truncated: TruncatedRows<'a>,
}

impl<'a> FeatureCall<'a> {
    /// Writes the constraints table of `req` over a vocabulary of `vocab_size` tokens, for a head of
    /// `tiles` tiles, into `space`.
    pub fn prepare(
        ctx: &Context,
        space: &mut FeatureSpace,
        req: &Request<'a>,
        vocab_size: u32,
        tiles: usize,
    ) -> Result<Self> {
        let (batch, top_n) = (req.hidden.batch, req.top_logprobs as usize);
        let table = table(&validate::transforms(req, vocab_size)?, req.top_logprobs);
        let norms_bytes = (tiles * batch * 8) as u64;
        let truncated = TruncatedRows::of(req, vocab_size as usize, 2 * tiles * batch * top_n);
        let (scaled_at, scaled) = truncated.region();
        space.reserve(
            ctx,
            &FeatureSizes {
                table: (table.len() * 4) as u64,
                norms: norms_bytes,
                ranked: scaled_at + scaled,
                scaled,
                top: (batch * top_n * 8) as u64,
            },
        );
        ctx.queue.write_buffer(space.table.get(), 0, bytemuck::cast_slice(&table));
        let params = [tiles as u32, batch as u32, top_n as u32, 0];
        ctx.queue.write_buffer(space.top_params.get(), 0, bytemuck::cast_slice(&params));
        let (epilogue, merge) = space.bind_groups(ctx);
        Ok(FeatureCall { epilogue, merge, batch, top_n, norms_bytes, truncated })
    }

    /// Records the top-N merge, after the last launch's pass 1.
    pub fn merge_top_n(&self, ctx: &Context, pass: &mut wgpu::ComputePass<'_>) {
        if self.top_n > 0 {
            pass.set_pipeline(ctx.top_pipeline());
            pass.set_bind_group(0, &self.merge, &[]);
            let (x, y) = ctx.grid(self.batch);
            pass.dispatch_workgroups(x, y, 1);
        }
    }

    /// Copies what the call returns to the read-back buffers.
    pub fn copy_outputs(&self, space: &FeatureSpace, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_buffer_to_buffer(space.norms.get(), 0, space.norms_readback.get(), 0, self.norms_bytes);
        if self.top_n > 0 {
            encoder.copy_buffer_to_buffer(space.top.get(), 0, space.top_readback.get(), 0, self.top_bytes());
        }
        if !self.truncated.is_empty() {
            let (at, bytes) = self.truncated.region();
            encoder.copy_buffer_to_buffer(space.ranked.get(), at, space.scaled_readback.get(), 0, bytes);
        }
    }

    /// Reads the outputs back, once the call's work is done, and cuts the truncated rows: returns
    /// those the device still samples.
    pub fn read(
        &self,
        ctx: &Context,
        space: &FeatureSpace,
        req: &Request<'_>,
        mut outputs: RowOutputs<'_>,
    ) -> Result<Finishes> {
        ctx.read_mapped(space.norms_readback.get(), self.norms_bytes, |partials| merge_norms(partials, outputs.norms))?;
        if self.top_n > 0 {
            ctx.read_mapped(space.top_readback.get(), self.top_bytes(), |keys| read_u64s(keys, outputs.top))?;
        }
        let mut finishes = Finishes::default();
        if !self.truncated.is_empty() {
            let (_, bytes) = self.truncated.region();
            ctx.read_mapped(space.scaled_readback.get(), bytes, |scaled| {
                finishes = self.truncated.cut(req, scaled, &mut outputs);
            })?;
        }
        Ok(finishes)
    }

    fn top_bytes(&self) -> u64 {
        (self.batch * self.top_n * 8) as u64
    }
}

/// Little-endian u64 words into `out`.
pub(crate) fn read_u64s(bytes: &[u8], out: &mut [u64]) {
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *o = u64::from_le_bytes(b.try_into().expect("chunks of 8 bytes"));
    }
}

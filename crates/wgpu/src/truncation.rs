//! Exact top-k / top-p / min-p on wgpu. Pass 1's features epilogue leaves the scaled logits of
//! every row that truncation cuts (after the top-N lists in its `ranked` buffer). The host ranks
//! each such row and certifies its cut-off as the CPU backends do (the core's `cut_scaled_row`:
//! from the row's `list_length` most likely tokens, from every token when those cannot certify it),
//! which gives the row's top-N and log-normaliser over the survivors. Then shaders/finish.wgsl draws
//! Gumbel-max over the survivors with the shaders' own noise, over pass 1's samples of the row, so
//! a truncated row draws the untruncated row's token whenever that token survives.
//!
//! Unlike DESIGN.md §3.6 the device keeps no per-tile candidate lists: it writes whole rows (4
//! bytes a token) and the host ranks them, one more round trip per call. Exact either way.

use flashsampling_core::candidate::unpack;
use flashsampling_core::survivors::{cut_scaled_row, survivors_norm, RowPlan};
use flashsampling_core::{noise, Request, RowOutputs, RowParams};
use rayon::prelude::*;

use crate::context::Context;
use crate::workspace::FeatureSpace;

/// `ranked_at` of a row that leaves no scaled logits.
pub(crate) const NO_ROW: u32 = u32::MAX;
/// Bytes of the `Params` struct of finish.wgsl.
const FINISH_PARAMS: u64 = 16;

/// Whether a row of `req` is cut by its truncation (a greedy row's only for its logprobs).
pub(crate) fn truncates(req: &Request<'_>) -> bool {
    RowPlan::of_request(req).iter().any(|p| p.truncation.is_some())
}

/// The rows of one call whose scaled logits pass 1 leaves, in the order they are stored.
pub(crate) struct TruncatedRows<'a> {
    plans: Vec<RowPlan<'a>>,
    rows: Vec<usize>,
    /// Per row of the call: the shader's `ranked_at`.
    ranked_at: Vec<u32>,
    /// Word of `ranked` where the first row's logits begin.
    first_word: usize,
    vocab: usize,
}

impl<'a> TruncatedRows<'a> {
    /// The rows of `req` that truncation cuts, over a head of `vocab` tokens, stored from word
    /// `first_word`.
    pub fn of(req: &Request<'a>, vocab: usize, first_word: usize) -> Self {
        let plans = RowPlan::of_request(req);
        let rows: Vec<usize> = (0..plans.len()).filter(|&b| plans[b].truncation.is_some()).collect();
        let mut ranked_at = vec![NO_ROW; plans.len()];
        for (i, &b) in rows.iter().enumerate() {
            ranked_at[b] = (first_word + i * vocab) as u32;
        }
        TruncatedRows { plans, rows, ranked_at, first_word, vocab }
    }

    /// The shader's `ranked_at` of row `b`.
    pub fn ranked_at(&self, b: usize) -> u32 {
        self.ranked_at[b]
    }

    /// Bytes of scaled logits, and where they begin in `ranked`.
    pub fn region(&self) -> (u64, u64) {
        ((4 * self.first_word) as u64, (4 * self.rows.len() * self.vocab) as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Cuts every row from its scaled logits (`scaled`, read back), rows in parallel: writes its
    /// top-N keys and the log-normaliser over its survivors into `outputs` (whose `norms` hold the
    /// whole row's), and returns the rows whose samples the device must redraw.
    pub fn cut(&self, req: &Request<'_>, scaled: &[u8], outputs: &mut RowOutputs<'_>) -> Finishes {
        let n = req.top_logprobs as usize;
        let norms = &outputs.norms;
        // Mapped ranges are aligned (wgpu::MAP_ALIGNMENT): the rows are read in place.
        let scaled: &[f32] = bytemuck::cast_slice(scaled);
        let cuts: Vec<(Vec<u64>, Vec<u64>)> = self
            .rows
            .par_iter()
            .zip(scaled.par_chunks_exact(self.vocab))
            .map(|(&b, row)| {
                let mut top = vec![0; n];
                (cut_scaled_row(&self.plans[b], row, norms[b], &mut top), top)
            })
            .collect();
        let mut finishes = Finishes::default();
        for (&b, (survivors, top)) in self.rows.iter().zip(cuts) {
            outputs.top[b * n..(b + 1) * n].copy_from_slice(&top);
            outputs.norms[b] = survivors_norm(&survivors);
            let params = &req.rows[b];
            // Pass 1 drew a greedy row's argmax, which survives, unless nothing does (all masked):
            // then the row's candidates are EMPTY, as the finish writes for a row of no survivors.
            if !params.is_greedy() || survivors.is_empty() {
                finishes.add(b, params, &survivors);
            }
        }
        finishes
    }
}

/// finish.wgsl's `Finish`: one truncated row to sample.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Finish {
    row: u32,
    first: u32,
    count: u32,
    pad: u32,
    seed: [u32; 2],
    offset: [u32; 2],
}

/// The truncated rows the device samples: finish.wgsl's `Finish` entries and `(y bits, token)`
/// survivors.
#[derive(Default)]
pub(crate) struct Finishes {
    entries: Vec<Finish>,
    survivors: Vec<[u32; 2]>,
}

impl Finishes {
    fn add(&mut self, row: usize, params: &RowParams, survivors: &[u64]) {
        let words = |x: u64| [x as u32, (x >> 32) as u32];
        self.entries.push(Finish {
            row: row as u32,
            first: self.survivors.len() as u32,
            count: survivors.len() as u32,
            pad: 0,
            seed: words(params.seed),
            offset: words(params.offset),
        });
        self.survivors.extend(survivors.iter().map(|&key| {
            let (y, token) = unpack(key);
            [y.to_bits(), token]
        }));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records Gumbel-max over the survivors of `samples` samples per row into `out`, pass 2's
    /// output (EMPTY for a row of no survivors).
    pub fn record(
        &self,
        ctx: &Context,
        space: &mut FeatureSpace,
        out: &wgpu::Buffer,
        samples: usize,
        encoder: &mut wgpu::CommandEncoder,
    ) {
        let items = self.entries.len() * samples;
        let params = [items as u32, samples as u32, noise::gumbel_max().to_bits(), 0];
        let entries = bytemuck::cast_slice(&self.entries);
        let survivors = bytemuck::cast_slice(&self.survivors);
        space.reserve_finish(ctx, FINISH_PARAMS, entries.len() as u64, survivors.len() as u64);
        ctx.queue.write_buffer(space.finish_params.get(), 0, bytemuck::cast_slice(&params));
        ctx.queue.write_buffer(space.finishes.get(), 0, entries);
        if !survivors.is_empty() {
            ctx.queue.write_buffer(space.survivors.get(), 0, survivors);
        }
        let group = ctx.bind_group(
            &ctx.finish_layout,
            &[
                space.finish_params.get().as_entire_binding(),
                space.finishes.get().as_entire_binding(),
                space.survivors.get().as_entire_binding(),
                out.as_entire_binding(),
            ],
        );
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(ctx.finish_pipeline());
        pass.set_bind_group(0, &group, &[]);
        let (x, y) = ctx.grid(items);
        pass.dispatch_workgroups(x, y, 1);
    }
}

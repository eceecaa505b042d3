//! One sampling call: upload H and the row parameters, run pass 1 over every weight binding and
//! pass 2 into the output, read the packed candidates back.

use flashsampling_core::{LmHead, Request, Result};

use crate::context::Context;
use crate::head::ResidentHead;

/// Vocabulary rows per workgroup tile (the shader's `TILE`) and threads per workgroup.
pub(crate) const TILE: usize = 64;

/// Sample blocks per (tile, row): more blocks recompute the tile's logits, fewer leave threads idle.
const MAX_SAMPLE_BLOCKS: usize = 64;

fn words(values: &[u32]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// The `Row` struct of sample.wgsl per row.
fn row_words(req: &Request<'_>) -> Vec<u32> {
    req.rows
        .iter()
        .flat_map(|r| {
            [
                r.inv_temperature().to_bits(),
                u32::from(r.is_greedy()),
                r.seed as u32,
                (r.seed >> 32) as u32,
                r.offset as u32,
                (r.offset >> 32) as u32,
                0,
                0,
            ]
        })
        .collect()
}

pub(crate) fn run(
    ctx: &Context,
    head: &LmHead,
    resident: &ResidentHead,
    req: &Request<'_>,
    out: &mut [u64],
) -> Result<()> {
    let (batch, dim, samples) = (req.hidden.batch, head.dim, req.samples as usize);
    let mut hidden = vec![0.0f32; batch * dim];
    req.hidden.data.convert_range(0..batch * dim, &mut hidden);
    let hidden = ctx.storage("hidden", bytemuck::cast_slice(&hidden));
    let rows = ctx.storage("rows", words(&row_words(req)));
    let out_buffer = ctx.storage("candidates", &vec![0u8; out.len() * 8]);
    let tiles: usize = resident.chunks.iter().map(|c| c.rows.div_ceil(TILE)).sum();

    // Samples per launch: the partial winners of one launch must fit one binding.
    let per_launch = (ctx.binding_limit as usize / (tiles * batch * 8)).clamp(1, samples);
    let gumbel_max = flashsampling_core::noise::gumbel_max().to_bits();

    for sample_base in (0..samples).step_by(per_launch) {
        let count = per_launch.min(samples - sample_base);
        let partial = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tile winners"),
            size: (tiles * batch * count * 8) as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&ctx.sample[resident.dtype]);
            let mut tile_base = 0;
            for chunk in &resident.chunks {
                let chunk_tiles = chunk.rows.div_ceil(TILE);
                let params = ctx.uniform(words(&[
                    chunk.rows as u32,
                    head.vocab_offset + chunk.first_row as u32,
                    dim as u32,
                    batch as u32,
                    sample_base as u32,
                    count as u32,
                    tile_base as u32,
                    gumbel_max,
                ]));
                let group = ctx.bind_group(
                    &ctx.sample[resident.dtype],
                    &[&params, &chunk.buffer, &hidden, &rows, &ctx.bounds, &partial],
                );
                pass.set_bind_group(0, &group, &[]);
                let blocks = count.div_ceil(TILE).min(MAX_SAMPLE_BLOCKS);
                pass.dispatch_workgroups(chunk_tiles as u32, batch as u32, blocks as u32);
                tile_base += chunk_tiles;
            }
            let outputs = batch * count;
            let params = ctx.uniform(words(&[
                tiles as u32,
                outputs as u32,
                sample_base as u32,
                samples as u32,
                batch as u32,
                count as u32,
                0,
                0,
            ]));
            let group = ctx.bind_group(&ctx.reduce, &[&params, &partial, &out_buffer]);
            pass.set_pipeline(&ctx.reduce);
            pass.set_bind_group(0, &group, &[]);
            let groups = outputs.div_ceil(TILE);
            let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
            pass.dispatch_workgroups(groups.min(max) as u32, groups.div_ceil(max) as u32, 1);
        }
        ctx.submit_and_wait(encoder)?;
    }
    let bytes = ctx.read_back(&out_buffer, (out.len() * 8) as u64)?;
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *o = u64::from_le_bytes(b.try_into().expect("chunks of 8 bytes"));
    }
    Ok(())
}

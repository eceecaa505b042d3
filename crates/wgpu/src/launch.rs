//! One sampling call: write H and the row parameters into the workspace, run pass 1 over every
//! weight binding and pass 2 into the output, read the packed candidates back — one submission
//! per launch and one wait per call. Calls with constraints, logprobs or truncation run pass 1 with
//! the features epilogue (features.rs) and also read back the outputs it leaves; calls that
//! truncate a sampled row then wait once more, for the finish of truncation.rs.

use std::ops::Range;

use flashsampling_core::{Error, HiddenRef, LmHead, Request, Result, RowOutputs};

use crate::context::{Context, Epilogue};
use crate::features::{read_u64s, FeatureCall};
use crate::head::ResidentHead;
use crate::shape::{SampleShape, THREADS, TILE};
use crate::truncation::{truncates, NO_ROW};
use crate::workspace::{Sizes, Workspace};

/// Invocations per workgroup of reduce.wgsl.
const REDUCE_THREADS: usize = 64;
/// Tiles each pass-2 invocation scans at least, before more invocations share an output.
const TILES_PER_REDUCE_LANE: usize = 8;

/// Sample blocks per (tile, batch tile): more blocks recompute the tile's logits, fewer leave
/// invocations idle when a call draws many samples.
const MAX_SAMPLE_BLOCKS: usize = 64;

/// Bytes of the `Params` structs of sample.wgsl and reduce.wgsl.
const SAMPLE_PARAMS: u64 = 48;
const REDUCE_PARAMS: u64 = 32;

/// The `Row` struct of sample.wgsl per row; `ranked_at(b)`: where row `b`'s scaled logits go.
fn row_words(req: &Request<'_>, ranked_at: impl Fn(usize) -> u32) -> Vec<u32> {
    req.rows
        .iter()
        .enumerate()
        .flat_map(|(b, r)| {
            [
                r.inv_temperature().to_bits(),
                u32::from(r.is_greedy()),
                r.seed as u32,
                (r.seed >> 32) as u32,
                r.offset as u32,
                (r.offset >> 32) as u32,
                ranked_at(b),
                0,
            ]
        })
        .collect()
}

/// Writes the hidden rows as f32, each zero-padded to `stride`, with zero rows up to `padded_rows`.
fn write_hidden(ctx: &Context, ws: &mut Workspace, req: &Request<'_>, stride: usize, padded_rows: usize) {
    let dim = req.hidden.dim;
    let host = &mut ws.host_hidden;
    host.clear();
    host.resize(padded_rows * stride, 0.0);
    for (b, row) in host.chunks_exact_mut(stride).take(req.hidden.batch).enumerate() {
        req.hidden.data.convert_range(b * dim..(b + 1) * dim, &mut row[..dim]);
    }
    ctx.queue.write_buffer(ws.hidden.get(), 0, bytemuck::cast_slice(host));
}

/// As [`run`], writing `outputs` too: over groups of rows whose per-tile top-N lists, and when
/// they truncate their scaled logits and survivors, fit one binding (a row's results do not depend
/// on the rows beside it).
pub(crate) fn run_with_outputs(
    ctx: &Context,
    head: &LmHead,
    resident: &ResidentHead,
    req: &Request<'_>,
    out: &mut [u64],
    outputs: RowOutputs<'_>,
) -> Result<()> {
    let (batch, samples, n) = (req.hidden.batch, req.samples as usize, req.top_logprobs as usize);
    // Survivors take 8 bytes a token at most, the scaled logits beside the top-N lists 4.
    let ranking_bytes = if truncates(req) { 8 * head.vocab_size as usize } else { 0 };
    let row_bytes = resident.tiles() * n * 8 + ranking_bytes;
    if row_bytes as u64 > ctx.binding_limit {
        return Err(Error::Unsupported {
            backend: crate::NAME.into(),
            what: format!(
                "ranking one row of {} tokens takes {row_bytes} bytes in one binding; this adapter binds {}",
                head.vocab_size, ctx.binding_limit
            ),
        });
    }
    let per_group = (ctx.binding_limit as usize / row_bytes.max(1)).clamp(1, batch);
    for start in (0..batch).step_by(per_group) {
        let rows = start..(start + per_group).min(batch);
        let group_outputs =
            RowOutputs { norms: &mut outputs.norms[rows.clone()], top: &mut outputs.top[rows.start * n..rows.end * n] };
        let group_out = &mut out[rows.start * samples..rows.end * samples];
        run(ctx, head, resident, &rows_of(req, rows), group_out, Some(group_outputs), 1)?;
    }
    Ok(())
}

/// Rows `rows` of `req`.
fn rows_of<'a>(req: &Request<'a>, rows: Range<usize>) -> Request<'a> {
    let dim = req.hidden.dim;
    Request {
        hidden: HiddenRef { data: req.hidden.data.slice(rows.start * dim..rows.end * dim), batch: rows.len(), dim },
        rows: &req.rows[rows.clone()],
        constraints: req.constraints.map(|c| &c[rows.clone()]),
        truncation: req.truncation.map(|t| &t[rows]),
        ..*req
    }
}

/// Samples into `out`; with `outputs`, also each row's log-normaliser over the head and its
/// top-N list, and truncated rows sampled over their survivors. `repeats` > 1 records the
/// sampling passes that many times back to back (the same results): the benchmark times the
/// device's passes apart from the call's host round trip.
pub(crate) fn run(
    ctx: &Context,
    head: &LmHead,
    resident: &ResidentHead,
    req: &Request<'_>,
    out: &mut [u64],
    outputs: Option<RowOutputs<'_>>,
    repeats: u32,
) -> Result<()> {
    let (batch, samples) = (req.hidden.batch, req.samples as usize);
    let shape = SampleShape::for_batch(resident.dtype, batch);
    let batch_groups = batch.div_ceil(shape.batch_tile);
    let stride = shape.hidden_stride(resident.words_per_row);
    let steps = shape.steps(resident.words_per_row);
    let tiles = resident.tiles();
    // Samples per launch: the partial winners of one launch must fit one binding.
    let per_launch = (ctx.binding_limit as usize / (tiles * batch * 8)).clamp(1, samples);
    let slot = ctx.params_slot_bytes() as usize;
    let out_bytes = (out.len() * 8) as u64;

    let mut guard = ctx.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let ws = &mut *guard;
    ws.reserve(
        ctx,
        &Sizes {
            hidden: (batch_groups * shape.batch_tile * stride * 4) as u64,
            rows: (batch * 32) as u64,
            params: ((resident.chunks.len() + 1) * slot) as u64,
            partial: (tiles * batch * per_launch * 8) as u64,
            out: out_bytes,
        },
    );
    write_hidden(ctx, ws, req, stride, batch_groups * shape.batch_tile);
    let features = if req.constraints.is_some() || outputs.is_some() {
        Some(FeatureCall::prepare(ctx, &mut ws.features, req, head.vocab_size, tiles)?)
    } else {
        None
    };
    let rows = row_words(req, |b| features.as_ref().map_or(NO_ROW, |f| f.truncated.ranked_at(b)));
    ctx.queue.write_buffer(ws.rows.get(), 0, bytemuck::cast_slice(&rows));
    let sample_groups = resident.bind_groups(ctx, ws, SAMPLE_PARAMS);
    let reduce_group = ws.reduce_group(ctx, REDUCE_PARAMS);
    let epilogue = if features.is_some() { Epilogue::Features } else { Epilogue::Plain };
    let pipeline = ctx.sample_pipeline(shape, epilogue);
    let gumbel_max = flashsampling_core::noise::gumbel_max().to_bits();

    let reduce_lanes = tiles.div_ceil(TILES_PER_REDUCE_LANE).next_power_of_two().min(REDUCE_THREADS);
    let mut params = vec![0u32; (resident.chunks.len() + 1) * slot / 4];
    for sample_base in (0..samples).step_by(per_launch) {
        let count = per_launch.min(samples - sample_base);
        let last = sample_base + count == samples;
        let launch_outputs = batch * count;
        params[..8].copy_from_slice(&[
            tiles as u32,
            launch_outputs as u32,
            sample_base as u32,
            samples as u32,
            batch as u32,
            count as u32,
            reduce_lanes as u32,
            0,
        ]);
        let mut tile_base = 0;
        for (i, chunk) in resident.chunks.iter().enumerate() {
            let at = (i + 1) * slot / 4;
            params[at..at + 12].copy_from_slice(&[
                chunk.rows as u32,
                head.vocab_offset + chunk.first_row as u32,
                resident.words_per_row as u32,
                steps as u32,
                stride as u32,
                batch as u32,
                sample_base as u32,
                count as u32,
                tile_base as u32,
                gumbel_max,
                batch_groups as u32,
                chunk.rows.div_ceil(TILE) as u32,
            ]);
            tile_base += chunk.rows.div_ceil(TILE);
        }
        ctx.queue.write_buffer(ws.params.get(), 0, bytemuck::cast_slice(&params));

        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            if let Some(features) = &features {
                pass.set_bind_group(1, &features.epilogue, &[]);
            }
            let blocks = (shape.batch_tile * count).div_ceil(THREADS).clamp(1, MAX_SAMPLE_BLOCKS);
            for _ in 0..repeats {
                pass.set_pipeline(pipeline);
                for (chunk, group) in resident.chunks.iter().zip(&sample_groups) {
                    pass.set_bind_group(0, group, &[]);
                    let (x, y) = ctx.grid(chunk.rows.div_ceil(TILE) * batch_groups);
                    pass.dispatch_workgroups(x, y, blocks as u32);
                }
                pass.set_pipeline(&ctx.reduce);
                pass.set_bind_group(0, &reduce_group, &[]);
                let (x, y) = ctx.grid(launch_outputs.div_ceil(REDUCE_THREADS / reduce_lanes));
                pass.dispatch_workgroups(x, y, 1);
            }
            if let Some(features) = features.as_ref().filter(|_| last) {
                features.merge_top_n(ctx, &mut pass);
            }
        }
        if last {
            encoder.copy_buffer_to_buffer(ws.out.get(), 0, ws.readback.get(), 0, out_bytes);
            if let Some(features) = features.as_ref().filter(|_| outputs.is_some()) {
                features.copy_outputs(&ws.features, &mut encoder);
            }
        }
        ctx.queue.submit([encoder.finish()]);
    }
    if let (Some(features), Some(outputs)) = (&features, outputs) {
        let finishes = features.read(ctx, &ws.features, req, outputs)?;
        if !finishes.is_empty() {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            finishes.record(ctx, &mut ws.features, ws.out.get(), samples, &mut encoder);
            encoder.copy_buffer_to_buffer(ws.out.get(), 0, ws.readback.get(), 0, out_bytes);
            ctx.queue.submit([encoder.finish()]);
        }
    }
    ctx.read_mapped(ws.readback.get(), out_bytes, |data| read_u64s(data, out))
}

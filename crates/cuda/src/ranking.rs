//! Rows that rank their tokens (truncation, top-N logprobs) on the CUDA backend. The `_ex` kernels
//! write their scaled logits `y`; `select.cu` keeps each row's most likely keys on the device; the
//! host finishes each row from that list with the core's ranking ([`finish_row`]: the certificate
//! of DESIGN.md §3.6, Gumbel-max over the survivors with the row's own noise, top-N, log-normaliser).
//! A row whose list cannot certify its cut-off is finished from its whole row, downloaded: the
//! exact fallback.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr};
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::ranked::Ranked;
use flashsampling_core::survivors::{finish_row, RowPlan, COMPLETE_LISTS_CERTIFY};
use flashsampling_core::{Result, RowParams};
use rayon::prelude::*;

use crate::backend::f32s;
use crate::driver::device_error;
use crate::launch::{self, Extras, NO_MASK};

/// The device buffers of one call's ranking rows.
pub(crate) struct RankingRows {
    /// Batch index of each ranking row.
    rows: Vec<usize>,
    /// `rows.len() + 1` offsets of each row's keys.
    starts: Vec<u32>,
    v_rows: u32,
    /// `[ranking row][v_rows]` f32 `y`, written by the `_ex` kernel.
    scaled: CudaSlice<u8>,
    /// Per batch row: its ranking row, or [`NO_MASK`].
    scaled_row: CudaSlice<u8>,
    out_start: CudaSlice<u8>,
    keys: CudaSlice<u64>,
    counts: CudaSlice<u32>,
}

impl RankingRows {
    /// The buffers for the rows of `plans` that rank (`None` when none does), over `v_rows` tokens.
    pub fn new(stream: &Arc<CudaStream>, plans: &[RowPlan<'_>], v_rows: u32) -> Result<Option<Self>> {
        let rows: Vec<usize> = (0..plans.len()).filter(|&b| plans[b].list_length > 0).collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let mut scaled_row = vec![NO_MASK; plans.len()];
        let mut starts = vec![0u32];
        for (i, &b) in rows.iter().enumerate() {
            scaled_row[b] = i as u32;
            starts.push(starts[i] + plans[b].list_length.min(v_rows as usize) as u32);
        }
        let upload = |v: &[u32]| {
            stream
                .clone_htod(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
                .map_err(|e| device_error("upload", e))
        };
        let alloc_err = |e| device_error("alloc", e);
        // SAFETY: the kernels write every value before it is read (keys: up to the counts written).
        let (scaled, keys, counts) = unsafe {
            (
                stream.alloc::<u8>(rows.len() * v_rows as usize * 4).map_err(alloc_err)?,
                stream.alloc::<u64>(starts[rows.len()] as usize).map_err(alloc_err)?,
                stream.alloc::<u32>(2 * rows.len()).map_err(alloc_err)?,
            )
        };
        Ok(Some(RankingRows {
            scaled_row: upload(&scaled_row)?,
            out_start: upload(&starts)?,
            rows,
            starts,
            v_rows,
            scaled,
            keys,
            counts,
        }))
    }

    /// Points the fused launch's extras at the scaled-logit buffers.
    pub fn point(&self, stream: &CudaStream, extras: &mut Extras) {
        extras.scaled = self.scaled.device_ptr(stream).0;
        extras.scaled_row = self.scaled_row.device_ptr(stream).0;
    }

    /// Enqueues the selection of every ranking row's keys, after the fused launch on `stream`.
    pub fn select(&self, f: &CudaFunction, stream: &CudaStream, vocab_offset: u32) -> Result<()> {
        let (s, o) = (self.scaled.device_ptr(stream).0, self.out_start.device_ptr(stream).0);
        let (k, c) = (self.keys.device_ptr(stream).0, self.counts.device_ptr(stream).0);
        // SAFETY: buffers of this context sized as `select_top` requires, alive until the caller
        // synchronises in `finish`.
        unsafe {
            launch::select_top(f, (s, self.v_rows, vocab_offset), (o, k, c), self.rows.len() as u32, stream.cu_stream())
        }
    }

    /// Downloads the lists and finishes every ranking row: its samples in `out` (`samples` per row)
    /// when truncated, its top-N keys in `top` (`n` per row), its log-normaliser in `norms` (the
    /// shard's on entry, the sampled distribution's on return).
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        stream: &Arc<CudaStream>,
        (plans, params): (&[RowPlan<'_>], &[RowParams]),
        vocab_offset: u32,
        norms: &mut [LogSumExp],
        (out, samples): (&mut [u64], usize),
        (top, n): (&mut [u64], usize),
    ) -> Result<()> {
        let keys = stream.clone_dtoh(&self.keys).map_err(|e| device_error("download", e))?;
        let counts = stream.clone_dtoh(&self.counts).map_err(|e| device_error("download", e))?;
        stream.synchronize().map_err(|e| device_error("synchronize", e))?;
        // Each ranking row's output slices; the rows are finished on the thread pool, and those whose
        // list cannot certify their cut-off afterwards, from their whole row.
        let mut slices: Vec<Option<(&mut [u64], &mut [u64])>> = out
            .chunks_mut(samples)
            .zip(top.chunks_mut(n.max(1)).chain(std::iter::repeat_with(|| &mut [][..])))
            .map(Some)
            .collect();
        let jobs: Vec<_> = self.rows.iter().enumerate().map(|(i, &b)| (i, b, slices[b].take())).collect();
        let finished: Vec<_> = jobs
            .into_par_iter()
            .map(|(i, b, row)| {
                let (row_out, row_top) = row.expect("one job per row");
                let start = self.starts[i] as usize;
                let mut list = keys[start..start + counts[2 * i] as usize].to_vec();
                list.sort_unstable_by(|a, c| c.cmp(a));
                let capacity = (self.starts[i + 1] - self.starts[i]) as usize;
                let ranked = Ranked { keys: list, complete: counts[2 * i + 1] as usize <= capacity };
                let norm = finish_row(&plans[b], &params[b], &ranked, norms[b], row_out, row_top);
                (i, b, row_out, row_top, norm)
            })
            .collect();
        for (i, b, row_out, row_top, norm) in finished {
            norms[b] = match norm {
                Some(norm) => norm,
                None => {
                    let whole = Ranked::all(&self.download_row(stream, i)?, vocab_offset);
                    finish_row(&plans[b], &params[b], &whole, norms[b], row_out, row_top).expect(COMPLETE_LISTS_CERTIFY)
                }
            };
        }
        Ok(())
    }

    /// The scaled logits of ranking row `i`.
    fn download_row(&self, stream: &Arc<CudaStream>, i: usize) -> Result<Vec<f32>> {
        let bytes = 4 * self.v_rows as usize;
        let row = self.scaled.slice(i * bytes..(i + 1) * bytes);
        let mut host = vec![0u8; bytes];
        stream.memcpy_dtoh(&row, &mut host).map_err(|e| device_error("download", e))?;
        stream.synchronize().map_err(|e| device_error("synchronize", e))?;
        Ok(f32s(&host))
    }
}

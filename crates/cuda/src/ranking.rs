//! Rows that rank their tokens (truncation, top-N logprobs) on the CUDA backend. The `_ex` kernels
//! write their scaled logits `y`; `select.cu` keeps each row's most likely keys on the device,
//! starting from the row maxima of the merged log-normalisers; the host finishes each row from that
//! list with the core's ranking ([`finish_row`]: the certificate of DESIGN.md §3.6, Gumbel-max over
//! the survivors with the row's own noise, top-N, log-normaliser). A row whose list cannot certify
//! its cut-off is finished from its whole row, downloaded: the exact fallback.

use std::sync::Arc;

use cudarc::driver::{sys, CudaFunction, CudaStream};
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::ranked::Ranked;
use flashsampling_core::survivors::{finish_row, RowPlan, COMPLETE_LISTS_CERTIFY};
use flashsampling_core::{Result, RowParams};
use rayon::prelude::*;

use crate::arena::{u32_bytes, Call, Layout, Outputs, Region};
use crate::backend::f32s;
use crate::launch::{self, Extras, SelectArgs, NO_MASK, SELECT_COUNTER_BYTES, SELECT_SET_KEYS};

/// Where one call's ranking rows live in its arena.
pub(crate) struct RankingRows {
    /// Batch index of each ranking row.
    rows: Vec<usize>,
    /// `rows.len() + 1` offsets of each row's keys.
    starts: Vec<u32>,
    v_rows: u32,
    /// Rows of the batch.
    batch: u32,
    /// Scratch: `[ranking row][v_rows]` f32 `y`, written by the `_ex` kernel.
    scaled: Region,
    /// Input: per batch row, its ranking row or [`NO_MASK`]; the offsets `starts`.
    scaled_row: Region,
    out_start: Region,
    /// Outputs: the kept keys and the counts of the selection.
    keys: Region,
    counts: Region,
    /// Scratch: the selection's counters and sets.
    counters: Region,
    set: Region,
}

impl RankingRows {
    /// Lays out the buffers of the rows of `plans` that rank (`None` when none does), over `v_rows`
    /// tokens.
    pub fn stage(plans: &[RowPlan<'_>], v_rows: u32, layout: &mut Layout) -> Option<Self> {
        let rows: Vec<usize> = (0..plans.len()).filter(|&b| plans[b].list_length > 0).collect();
        if rows.is_empty() {
            return None;
        }
        let mut scaled_row = vec![NO_MASK; plans.len()];
        let mut starts = vec![0u32];
        for (i, &b) in rows.iter().enumerate() {
            scaled_row[b] = i as u32;
            starts.push(starts[i] + plans[b].list_length.min(v_rows as usize) as u32);
        }
        let n = rows.len();
        Some(RankingRows {
            scaled: layout.scratch(n * v_rows as usize * 4),
            scaled_row: layout.input(&u32_bytes(&scaled_row)),
            out_start: layout.input(&u32_bytes(&starts)),
            keys: layout.output(8 * starts[n] as usize),
            counts: layout.output(8 * n),
            counters: layout.scratch(n * SELECT_COUNTER_BYTES),
            set: layout.scratch(8 * n * SELECT_SET_KEYS),
            batch: plans.len() as u32,
            rows,
            starts,
            v_rows,
        })
    }

    /// Points the fused launch's extras at the scaled-logit buffers.
    pub fn point(&self, call: &Call<'_>, extras: &mut Extras) {
        extras.scaled = call.ptr(self.scaled);
        extras.scaled_row = call.ptr(self.scaled_row);
    }

    /// Enqueues the selection of every ranking row's keys, after the fused launch and the merge of
    /// the batch's log-normalisers (`norms`, per batch row) on `stream`.
    pub fn select(
        &self,
        functions: [&CudaFunction; 3],
        (call, stream): (&Call<'_>, &CudaStream),
        vocab_offset: u32,
        norms: sys::CUdeviceptr,
    ) -> Result<()> {
        let args = SelectArgs {
            scaled: call.ptr(self.scaled),
            scaled_row: call.ptr(self.scaled_row),
            norms,
            out_start: call.ptr(self.out_start),
            counters: call.ptr(self.counters),
            set: call.ptr(self.set),
            keys: call.ptr(self.keys),
            counts: call.ptr(self.counts),
            v_rows: self.v_rows,
            vocab_offset,
        };
        // SAFETY: regions of the call's arena sized as `SelectArgs` requires, alive until the call's
        // download; `norms` holds the batch's merged log-normalisers.
        unsafe { launch::select_top(functions, &args, (self.batch, self.rows.len() as u32), stream.cu_stream()) }
    }

    /// Finishes every ranking row from the call's downloaded `outputs`: its samples in `out`
    /// (`samples` per row) when truncated, its top-N keys in `top` (`n` per row), its log-normaliser
    /// in `norms` (the shard's on entry, the sampled distribution's on return).
    #[allow(clippy::too_many_arguments)]
    pub fn finish<'o>(
        &self,
        (call, outputs, stream): (&Call<'_>, &Outputs, &Arc<CudaStream>),
        (plans, params): (&[RowPlan<'_>], &[RowParams]),
        vocab_offset: u32,
        norms: &mut [LogSumExp],
        (out, samples): (&'o mut [u64], usize),
        (top, n): (&'o mut [u64], usize),
    ) -> Result<()> {
        let keys: Vec<u64> = outputs
            .get(self.keys)
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let counts: Vec<u32> = outputs
            .get(self.counts)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        // Each ranking row's output slices; the rows are finished on the thread pool, and those whose
        // list cannot certify their cut-off afterwards, from their whole row.
        type Slices<'o> = (&'o mut [u64], &'o mut [u64]);
        let mut slices: Vec<Option<Slices<'o>>> = out
            .chunks_mut(samples)
            .zip(top.chunks_mut(n.max(1)).chain(std::iter::repeat_with(|| &mut [][..])))
            .map(Some)
            .collect();
        let jobs: Vec<_> = self.rows.iter().enumerate().map(|(i, &b)| (i, b, slices[b].take())).collect();
        let finish = |(i, b, row): (usize, usize, Option<Slices<'o>>)| {
            let (row_out, row_top) = row.expect("one job per row");
            let start = self.starts[i] as usize;
            let mut list = keys[start..start + counts[2 * i] as usize].to_vec();
            list.sort_unstable_by(|a, c| c.cmp(a));
            let capacity = (self.starts[i + 1] - self.starts[i]) as usize;
            let ranked = Ranked { keys: list, complete: counts[2 * i + 1] as usize <= capacity };
            let norm = finish_row(&plans[b], &params[b], &ranked, norms[b], row_out, row_top);
            (i, b, row_out, row_top, norm)
        };
        // A thread pool's dispatch costs more than finishing a few rows here.
        let finished: Vec<_> = if jobs.len() <= PARALLEL_ROWS {
            jobs.into_iter().map(finish).collect()
        } else {
            jobs.into_par_iter().map(finish).collect()
        };
        for (i, b, row_out, row_top, norm) in finished {
            norms[b] = match norm {
                Some(norm) => norm,
                None => {
                    let whole = Ranked::all(&self.download_row(call, stream, i)?, vocab_offset);
                    finish_row(&plans[b], &params[b], &whole, norms[b], row_out, row_top).expect(COMPLETE_LISTS_CERTIFY)
                }
            };
        }
        Ok(())
    }

    /// The scaled logits of ranking row `i`.
    fn download_row(&self, call: &Call<'_>, stream: &Arc<CudaStream>, i: usize) -> Result<Vec<f32>> {
        let bytes = 4 * self.v_rows as usize;
        Ok(f32s(&call.download_region(stream, self.scaled.slice(i * bytes, bytes))?))
    }
}

/// Ranking rows up to which a call finishes them on its own thread: on the H100 machine's host, the
/// thread pool took about 65 µs for 16 rows of top-k 50 + top-p 0.9, one row about 2 µs alone.
const PARALLEL_ROWS: usize = 32;

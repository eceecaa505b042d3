//! Rows that rank their tokens (truncation, top-N logprobs) on the CUDA backend. The `_ex` kernels
//! write their scaled logits `y`; `select.cu` merges the batch's log-normaliser partials and keeps
//! each ranking row's most likely keys on the device, starting from its maximum, and `finish.cu`
//! finishes each truncated row there: the certificate of DESIGN.md §3.6, Gumbel-max over the
//! survivors with the row's own noise, the survivors' log-normaliser. A row whose list cannot
//! certify its cut-off is finished on the device from its whole row (`finish_whole.cu`): the exact
//! fallback. The host copies the top-N lists.

use cudarc::driver::{sys, CudaFunction, CudaStream};
use flashsampling_core::candidate::EMPTY;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::ranked::Ranked;
use flashsampling_core::survivors::{finish_row, RowPlan};
use flashsampling_core::{Result, RowParams};

use crate::arena::{u32_bytes, Call, Layout, Outputs, Region};
use crate::launch::{
    self, Extras, RankParams, SelectArgs, FINISHED_ON_DEVICE, NO_MASK, SELECT_COUNTER_BYTES, SELECT_SET_KEYS,
};

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
    /// Inputs: per batch row, its ranking row or [`NO_MASK`]; the offsets `starts`; per ranking row,
    /// its [`RankParams`].
    scaled_row: Region,
    out_start: Region,
    ranks: Region,
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
            ranks: layout.input(&RankParams::to_bytes(
                &rows.iter().map(|&b| RankParams::new(plans[b].truncation)).collect::<Vec<_>>(),
            )),
            keys: layout.output(8 * starts[n] as usize),
            counts: layout.output(16 * n),
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

    /// Enqueues, after the fused launch (candidates in `cands`, `samples` per row, from `rows`; its
    /// log-normaliser partials in `parts`, `slots` per batch row) on `stream`: the merge of every
    /// batch row's partials into `merged`, the selection of every ranking row's keys and the
    /// finishing of its truncated rows.
    pub fn select(
        &self,
        functions: [&CudaFunction; 2],
        (call, stream): (&Call<'_>, &CudaStream),
        (rows, cands, samples): (sys::CUdeviceptr, sys::CUdeviceptr, u32),
        vocab_offset: u32,
        ((parts, slots), merged): ((sys::CUdeviceptr, u32), sys::CUdeviceptr),
    ) -> Result<()> {
        let args = SelectArgs {
            scaled: call.ptr(self.scaled),
            scaled_row: call.ptr(self.scaled_row),
            parts,
            norms: merged,
            out_start: call.ptr(self.out_start),
            counters: call.ptr(self.counters),
            set: call.ptr(self.set),
            keys: call.ptr(self.keys),
            counts: call.ptr(self.counts),
            rows,
            ranks: call.ptr(self.ranks),
            cands,
            v_rows: self.v_rows,
            vocab_offset,
            samples,
            slots,
        };
        // SAFETY: regions of the call's arena sized as `SelectArgs` requires, alive until the call's
        // download; `parts` holds the batch's log-normaliser partials and `merged` a row for each,
        // `rows` and `cands` the batch's rows and candidates.
        unsafe { launch::select_top(functions, &args, (self.batch, self.rows.len() as u32), stream.cu_stream()) }
    }

    /// Finishes every ranking row from the call's downloaded `outputs`: its top-N keys in `top` (`n`
    /// per row); a row that ranks only for its top-N (not truncated, so not finished on the device)
    /// also gets its log-normaliser in `norms` (the shard's on entry). Truncated rows were finished
    /// on the device: their samples are in `out` and their survivors' log-normalisers in `norms`.
    pub fn finish(
        &self,
        outputs: &Outputs,
        (plans, params): (&[RowPlan<'_>], &[RowParams]),
        norms: &mut [LogSumExp],
        (out, samples): (&mut [u64], usize),
        (top, n): (&mut [u64], usize),
    ) {
        let (keys, counts) = (outputs.u64s(self.keys), outputs.u32s(self.counts));
        let mut no_top = [];
        for (i, &b) in self.rows.iter().enumerate() {
            let [written, live, survivors, finished] = counts[4 * i..4 * i + 4].try_into().expect("4 counts");
            let start = self.starts[i] as usize;
            // The device wrote each list in rank order.
            let list = &keys[start..start + written as usize];
            let row_top = if n > 0 { &mut top[b * n..(b + 1) * n] } else { &mut no_top[..] };
            if finished == FINISHED_ON_DEVICE {
                // A row finished from its whole row has more survivors than kept keys.
                let kept = list[..list.len().min(survivors as usize)].iter().copied().chain(std::iter::repeat(EMPTY));
                row_top.iter_mut().zip(kept).for_each(|(slot, key)| *slot = key);
                continue;
            }
            let capacity = (self.starts[i + 1] - self.starts[i]) as usize;
            let ranked = Ranked { keys: list.to_vec(), complete: live as usize <= capacity };
            let row_out = &mut out[b * samples..(b + 1) * samples];
            norms[b] = finish_row(&plans[b], &params[b], &ranked, norms[b], row_out, row_top)
                .expect("a row that is not truncated has no cut-off to certify");
        }
    }
}

//! Rows that rank their tokens (truncation, top-N logprobs) on the CUDA backend.
//!
//! - Where the tensor-core kernel runs and every ranking row keeps at most [`LIST_KEEP_MAX`] keys
//!   (top-k ≤ 64, top-N), its epilogue keeps per-tile candidate lists (DESIGN.md §3.6,
//!   `tile_lists.cuh`) and `select_lists` merges each row's lists: nothing the size of the
//!   vocabulary is written.
//! - Otherwise the `_ex` kernels write the rows' scaled logits `y`, and `select.cu` keeps each
//!   ranking row's most likely keys from them, starting from its maximum.
//!
//! Either way the selection merges the batch's log-normaliser partials, and `finish.cu` finishes
//! each truncated row on the device: the certificate of DESIGN.md §3.6, Gumbel-max over the
//! survivors with the row's own noise, the survivors' log-normaliser. A row whose list cannot
//! certify its cut-off (top-p or min-p without top-k, which never keeps lists) is finished on the
//! device from its whole row (`finish_whole.cu`): the exact fallback. The host copies the top-N
//! lists.

use std::sync::Arc;

use cudarc::driver::{sys, CudaFunction, CudaStream};
use flashsampling_core::candidate::EMPTY;
use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::ranked::Ranked;
use flashsampling_core::survivors::{finish_row, RowPlan};
use flashsampling_core::{Result, RowParams};

use crate::arena::{u32_bytes, Call, Layout, Outputs, Region};
use crate::launch::{
    self, Extras, RankParams, SelectArgs, FINISHED_ON_DEVICE, LIST_HEAD_BYTES, LIST_KEEP_MAX, LIST_SLOTS, NO_MASK,
    SELECT_COUNTER_BYTES, SELECT_SET_KEYS,
};

/// Where the fused launch leaves the ranking rows' keys.
enum Keys {
    /// `[ranking row][v_rows]` f32 `y`, and the selection's counters and sets (scratch).
    Scaled { scaled: Region, counters: Region, set: Region },
    /// Per-tile lists, their heads and the board of their tops (zeroed before the call), `slots` per
    /// ranking row; the lists hold each row's `keep` largest keys.
    Lists { lists: Region, heads: Region, tops: Region, slots: u32, keep: u32 },
}

/// Where one call's ranking rows live in its arena.
pub(crate) struct RankingRows {
    /// Batch index of each ranking row.
    rows: Vec<usize>,
    /// `rows.len() + 1` offsets of each row's keys.
    starts: Vec<u32>,
    v_rows: u32,
    /// Rows of the batch.
    batch: u32,
    /// Whether every ranking row truncates: the selection then draws all their samples.
    all_truncate: bool,
    /// Scratch: what the `_ex` kernel writes.
    keys_from: Keys,
    /// Inputs: per batch row, its ranking row or [`NO_MASK`]; the offsets `starts`; per ranking row,
    /// its [`RankParams`].
    scaled_row: Region,
    out_start: Region,
    ranks: Region,
    /// Outputs: the kept keys (scratch when the host reads none: no top-N, every row truncated and
    /// so finished on the device) and the counts of the selection.
    keys: Region,
    keys_read: bool,
    counts: Region,
}

impl RankingRows {
    /// Lays out the buffers of the rows of `plans` that rank (`None` when none does), over `v_rows`
    /// tokens. `list_slots`: the log-normaliser slots per row of a tensor-core launch, whose
    /// kernel can keep per-tile lists (`None` for the CUDA-core kernel, which cannot).
    pub fn stage(plans: &[RowPlan<'_>], v_rows: u32, list_slots: Option<u32>, layout: &mut Layout) -> Option<Self> {
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
        // A list certifies top-k (the k largest keys) and top-N; top-p and min-p without top-k ask
        // for MAX_TOP_K keys, more than any list keeps.
        let listed = |p: &RowPlan<'_>| p.list_length <= LIST_KEEP_MAX;
        let keys_from = match list_slots {
            Some(slots)
                if slots <= crate::kernels::SELECT_LISTS_MAX_SLOTS && rows.iter().all(|&b| listed(&plans[b])) =>
            {
                let per_row = slots as usize;
                Keys::Lists {
                    lists: layout.scratch(8 * n * per_row * LIST_SLOTS),
                    heads: layout.scratch(n * per_row * LIST_HEAD_BYTES),
                    tops: layout.zeroed(4 * n * per_row),
                    slots,
                    keep: rows.iter().map(|&b| plans[b].list_length as u32).max().unwrap_or(1),
                }
            }
            _ => Keys::Scaled {
                scaled: layout.scratch(n * v_rows as usize * 4),
                counters: layout.scratch(n * SELECT_COUNTER_BYTES),
                set: layout.scratch(8 * n * SELECT_SET_KEYS),
            },
        };
        let keys_read = rows.iter().any(|&b| plans[b].top_n > 0 || plans[b].truncation.is_none());
        let keys_bytes = 8 * starts[n] as usize;
        Some(RankingRows {
            keys_from,
            scaled_row: layout.input(&u32_bytes(&scaled_row)),
            out_start: layout.input(&u32_bytes(&starts)),
            ranks: layout.input(&RankParams::to_bytes(
                &rows.iter().map(|&b| RankParams::new(plans[b].truncation)).collect::<Vec<_>>(),
            )),
            keys: if keys_read { layout.output(keys_bytes) } else { layout.scratch(keys_bytes) },
            keys_read,
            counts: layout.output(16 * n),
            batch: plans.len() as u32,
            all_truncate: rows.iter().all(|&b| plans[b].truncation.is_some()),
            rows,
            starts,
            v_rows,
        })
    }

    /// Points the fused launch's extras at the buffers of the ranking rows' keys.
    pub fn point(&self, call: &Call<'_>, extras: &mut Extras) {
        extras.scaled_row = call.ptr(self.scaled_row);
        match self.keys_from {
            Keys::Scaled { scaled, .. } => extras.scaled = call.ptr(scaled),
            Keys::Lists { lists, heads, tops, slots, keep } => {
                debug_assert_eq!(extras.norm_slots, slots, "the lists have the launch's slots");
                extras.lists = call.ptr(lists);
                extras.heads = call.ptr(heads);
                extras.tops = call.ptr(tops);
                extras.list_keep = keep;
                extras.lists_draw = u32::from(self.all_truncate);
            }
        }
    }

    /// Whether the board of the lists' tops is zero, as every launch must leave it (downloaded, after
    /// the stream's work); true without lists.
    pub fn board_is_clear(&self, call: &Call<'_>, stream: &Arc<CudaStream>) -> Result<bool> {
        match self.keys_from {
            Keys::Lists { tops, .. } => Ok(call.read(tops, stream)?.iter().all(|&b| b == 0)),
            Keys::Scaled { .. } => Ok(true),
        }
    }

    /// Enqueues, after the fused launch (candidates in `cands`, `samples` per row, from `rows`; its
    /// log-normaliser partials in `parts`, `slots` per batch row) on `stream`: the merge of every
    /// batch row's partials into `merged`, the selection of every ranking row's keys and the
    /// finishing of its truncated rows.
    pub fn select(
        &self,
        functions: [&CudaFunction; 3],
        (call, stream): (&Call<'_>, &CudaStream),
        (rows, cands, samples): (sys::CUdeviceptr, sys::CUdeviceptr, u32),
        vocab_offset: u32,
        ((parts, slots), merged): ((sys::CUdeviceptr, u32), sys::CUdeviceptr),
    ) -> Result<()> {
        let mut args = SelectArgs {
            scaled_row: call.ptr(self.scaled_row),
            parts,
            norms: merged,
            out_start: call.ptr(self.out_start),
            keys: call.ptr(self.keys),
            counts: call.ptr(self.counts),
            rows,
            ranks: call.ptr(self.ranks),
            cands,
            v_rows: self.v_rows,
            vocab_offset,
            samples,
            slots,
            ..SelectArgs::default()
        };
        match self.keys_from {
            Keys::Scaled { scaled, counters, set } => {
                args.scaled = call.ptr(scaled);
                args.counters = call.ptr(counters);
                args.set = call.ptr(set);
            }
            Keys::Lists { lists, heads, .. } => {
                args.lists = call.ptr(lists);
                args.heads = call.ptr(heads);
            }
        }
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
        let keys = if self.keys_read { outputs.u64s(self.keys) } else { Vec::new() };
        let counts = outputs.u32s(self.counts);
        let mut no_top = [];
        for (i, &b) in self.rows.iter().enumerate() {
            let [written, live, survivors, finished] = counts[4 * i..4 * i + 4].try_into().expect("4 counts");
            if !self.keys_read {
                debug_assert_eq!(finished, FINISHED_ON_DEVICE, "a truncated row is finished on the device");
                continue;
            }
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

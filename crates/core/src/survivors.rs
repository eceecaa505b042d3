//! The rows of a call that rank their tokens (truncation, top-N logprobs): what each needs, and how
//! a ranked row is finished — cut by its truncation, sampled over the survivors, its top-N and
//! log-normaliser written. Shared by every backend that ranks on the host; a backend that samples
//! the survivors on its device takes only the cut ([`cut_row`], [`cut_scaled_row`]).

use rayon::prelude::*;

use crate::candidate::{unpack, EMPTY};
use crate::cpu::Winner;
use crate::logsumexp::LogSumExp;
use crate::noise::{self, GumbelBounds};
use crate::params::{Request, RowParams};
use crate::ranked::{Ranked, TopList};
use crate::truncation::Truncation;

/// What one row needs beyond an untruncated sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowPlan<'a> {
    /// The row's truncation, when it can remove a token and matters: a greedy row's argmax always
    /// survives, so its truncation matters only to its logprobs.
    pub truncation: Option<&'a Truncation>,
    pub top_n: usize,
    /// How many tokens the row's ranked list keeps; 0: the row ranks nothing.
    pub list_length: usize,
}

impl<'a> RowPlan<'a> {
    pub fn of_request(req: &Request<'a>) -> Vec<Self> {
        (0..req.rows.len())
            .map(|b| {
                let truncation = req.row_truncation(b).filter(|_| req.logprobs || !req.rows[b].is_greedy());
                let top_n = req.top_logprobs as usize;
                RowPlan { truncation, top_n, list_length: Truncation::list_length(truncation, top_n) }
            })
            .collect()
    }

    /// The plan of the materialised fallback: rank all `vocab` tokens, which always certifies.
    pub fn ranking_all(self, vocab: usize) -> Self {
        RowPlan { list_length: vocab, ..self }
    }

    /// Whether the fused pass draws the row's samples (over every token).
    pub fn samples_in_pass(&self) -> bool {
        self.truncation.is_none()
    }
}

/// Why finishing a row from a [`Ranked::all`] list cannot fail.
pub const COMPLETE_LISTS_CERTIFY: &str = "a complete ranked list always certifies its cut-off";

/// Cuts a ranked row by its truncation: writes its top-N keys into `top` and returns its survivors
/// (the whole list when the row is not truncated). `None` when the list cannot certify the cut-off.
pub fn cut_row<'r>(plan: &RowPlan<'_>, ranked: &'r Ranked, total: LogSumExp, top: &mut [u64]) -> Option<&'r [u64]> {
    let survivors = match plan.truncation {
        Some(t) => &ranked.keys[..t.survivors(&ranked.keys, ranked.complete, total)?],
        None => &ranked.keys[..],
    };
    for (slot, &key) in top.iter_mut().zip(survivors.iter().chain(std::iter::repeat(&EMPTY))) {
        *slot = key;
    }
    Some(survivors)
}

/// The survivors of a row given as its materialised scaled logits over the whole vocabulary (as
/// truncation requires), its top-N keys written into `top`: cut from its `list_length` most likely
/// tokens when they certify the cut-off, else from eight times as many, and so on (a list of every
/// live token always certifies), so that a flat row sorts a few thousand keys, not the vocabulary.
pub fn cut_scaled_row(plan: &RowPlan<'_>, scaled: &[f32], total: LogSumExp, top: &mut [u64]) -> Vec<u64> {
    let mut capacity = plan.list_length.max(1);
    loop {
        let mut list = TopList::new(capacity);
        list.offer_tile(scaled, 0);
        let ranked = list.finish();
        match cut_row(plan, &ranked, total, top) {
            Some(survivors) => return survivors.to_vec(),
            None => assert!(!ranked.complete, "{COMPLETE_LISTS_CERTIFY}"),
        }
        capacity *= 8;
    }
}

/// The log-normaliser of the distribution over `survivors` (packed keys).
pub fn survivors_norm(survivors: &[u64]) -> LogSumExp {
    LogSumExp::of(survivors.iter().map(|&k| unpack(k).0))
}

/// Finishes a ranked row: writes its samples (when truncated: Gumbel-max over the survivors, the
/// same noise as the untruncated row) into `slots` and its top-N keys into `top`, and returns the
/// log-normaliser of the distribution it samples from. `None` when the list cannot certify the
/// cut-off: the caller ranks the whole row and finishes it from that complete list.
pub fn finish_row(
    plan: &RowPlan<'_>,
    params: &RowParams,
    ranked: &Ranked,
    total: LogSumExp,
    slots: &mut [u64],
    top: &mut [u64],
) -> Option<LogSumExp> {
    let survivors = cut_row(plan, ranked, total, top)?;
    if plan.truncation.is_none() {
        return Some(total);
    }
    sample_survivors(survivors, params, slots);
    Some(survivors_norm(survivors))
}

/// Gumbel-max over `survivors` (descending keys) for every sample of a row.
fn sample_survivors(survivors: &[u64], params: &RowParams, slots: &mut [u64]) {
    const SAMPLE_BLOCK: usize = 1024;
    if params.is_greedy() {
        slots.fill(survivors.first().copied().unwrap_or(EMPTY));
        return;
    }
    let bounds = GumbelBounds::shared();
    let sample_block = |block: usize, slots: &mut [u64]| {
        for (s, slot) in slots.iter_mut().enumerate() {
            let sample = (block * SAMPLE_BLOCK + s) as u32;
            let mut winner = Winner::new(EMPTY);
            for &key in survivors {
                let (y, token) = unpack(key);
                // Survivors come most likely first: once one is out of reach, so are the rest.
                if winner.out_of_reach(y, bounds) {
                    break;
                }
                winner.offer(y, token, noise::word(params.seed, params.offset, sample, token), bounds);
            }
            *slot = winner.best;
        }
    };
    // One block runs here: a thread pool's dispatch would cost more than a few samples.
    if slots.len() <= SAMPLE_BLOCK {
        sample_block(0, slots);
    } else {
        slots.par_chunks_mut(SAMPLE_BLOCK).enumerate().for_each(|(block, slots)| sample_block(block, slots));
    }
}

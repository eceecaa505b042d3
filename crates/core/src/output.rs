//! Decoding reduced candidates into tokens and per-row statuses.

use crate::candidate::{unpack, EMPTY};

/// The outcome of one row (request) of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RowStatus {
    /// Every sample of the row holds a token drawn from the row's distribution.
    Ok = 0,
    /// Every score of the row is `-inf`: there is nothing to sample.
    AllMasked = 1,
    /// A logit of the row is NaN (from NaN or infinite inputs).
    NanLogits = 2,
}

/// Tokens of a batch, `tokens[b * samples + s]`, and one status per row.
///
/// A row whose status is not [`RowStatus::Ok`] has every token set to 0: an index that is always in
/// range, so a caller that forgets the status cannot index out of bounds, but not a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOutput {
    pub samples: usize,
    pub tokens: Vec<u32>,
    pub status: Vec<RowStatus>,
}

impl SampleOutput {
    /// The samples of row `b`.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.tokens[b * self.samples..(b + 1) * self.samples]
    }

    /// Decodes reduced candidates, `candidates[b * samples + s]`.
    pub fn from_candidates(candidates: &[u64], samples: usize) -> Self {
        assert!(samples > 0 && candidates.len() % samples == 0);
        let mut tokens = Vec::with_capacity(candidates.len());
        let mut status = Vec::with_capacity(candidates.len() / samples);
        for row in candidates.chunks_exact(samples) {
            let row_status = row.iter().map(|&c| status_of(c)).max_by_key(|s| *s as u8).unwrap();
            status.push(row_status);
            tokens.extend(row.iter().map(|&c| if row_status == RowStatus::Ok { unpack(c).1 } else { 0 }));
        }
        SampleOutput { samples, tokens, status }
    }
}

fn status_of(candidate: u64) -> RowStatus {
    let score = unpack(candidate).0;
    if candidate == EMPTY || score == f32::NEG_INFINITY {
        RowStatus::AllMasked
    } else if score.is_nan() {
        RowStatus::NanLogits
    } else {
        RowStatus::Ok
    }
}

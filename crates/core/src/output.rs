//! Decoding reduced candidates into tokens and per-row statuses.

use crate::candidate::{unpack, EMPTY};
use crate::logsumexp::LogSumExp;
use crate::noise::gumbel;
use crate::params::RowParams;

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
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOutput {
    pub samples: usize,
    pub tokens: Vec<u32>,
    pub status: Vec<RowStatus>,
    /// With [`crate::Request::with_logprobs`]: `logprobs[b * samples + s]` of each sampled token
    /// (NaN for bad rows).
    pub logprobs: Option<Vec<f32>>,
    /// With logprobs: `logZ` of the distribution each row samples from (over the survivors of
    /// truncation), in units of `y = l̃ / T`.
    pub log_normalizer: Option<Vec<f32>>,
    /// With [`crate::Request::with_top_logprobs`]: each row's most likely tokens.
    pub top_logprobs: Option<TopLogprobs>,
}

/// The `n` most likely tokens of each row and their logprobs, under the distribution the row
/// samples from (the same as the sampled tokens' logprobs): `tokens[b * n + i]`,
/// `logprobs[b * n + i]`, most likely first, ties by lower token id.
///
/// A row with fewer than `n` tokens of positive probability (after masking and truncation) is
/// padded with token 0 and logprob `-inf`; a bad row has tokens 0 and logprobs NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct TopLogprobs {
    pub n: usize,
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
}

impl TopLogprobs {
    /// Row `b`'s `(token, logprob)` pairs, without the padding.
    pub fn row(&self, b: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = b * self.n..(b + 1) * self.n;
        self.tokens[range.clone()]
            .iter()
            .copied()
            .zip(self.logprobs[range].iter().copied())
            .filter(|&(_, lp)| lp != f32::NEG_INFINITY)
    }
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
        SampleOutput { samples, tokens, status, logprobs: None, log_normalizer: None, top_logprobs: None }
    }

    /// Adds logprobs from the candidates and each row's log-normaliser: a winner's `y` is its
    /// score less its noise (recomputed from the noise function), and `logprob = y - logZ`.
    pub fn with_logprobs(mut self, candidates: &[u64], norms: &[LogSumExp], rows: &[RowParams]) -> Self {
        let log_z: Vec<f64> = norms.iter().map(|n| n.ln()).collect();
        let logprobs = candidates
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (b, s) = (i / self.samples, i % self.samples);
                if self.status[b] != RowStatus::Ok {
                    return f32::NAN;
                }
                let (score, token) = unpack(c);
                let row = &rows[b];
                let noise =
                    if row.is_greedy() { 0.0 } else { f64::from(gumbel(row.seed, row.offset, s as u32, token)) };
                (f64::from(score) - noise - log_z[b]) as f32
            })
            .collect();
        self.logprobs = Some(logprobs);
        self.log_normalizer = Some(log_z.iter().map(|&z| z as f32).collect());
        self
    }

    /// Adds the top-N lists, `top[b * n + i]` packed `(y, token)` or [`EMPTY`], and their
    /// logprobs `y - logZ`.
    pub fn with_top_logprobs(mut self, top: &[u64], n: usize, norms: &[LogSumExp]) -> Self {
        let (mut tokens, mut logprobs) = (Vec::with_capacity(top.len()), Vec::with_capacity(top.len()));
        for (b, row) in top.chunks_exact(n).enumerate() {
            let log_z = norms[b].ln();
            for &key in row {
                let (token, logprob) = match (self.status[b], key) {
                    (RowStatus::Ok, EMPTY) => (0, f32::NEG_INFINITY),
                    (RowStatus::Ok, key) => {
                        let (y, token) = unpack(key);
                        (token, (f64::from(y) - log_z) as f32)
                    }
                    _ => (0, f32::NAN),
                };
                tokens.push(token);
                logprobs.push(logprob);
            }
        }
        self.top_logprobs = Some(TopLogprobs { n, tokens, logprobs });
        self
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

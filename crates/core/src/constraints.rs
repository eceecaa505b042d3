//! Per-row constraints applied to the logits inside the fused pass, before temperature
//! (DESIGN.md §3.3: `l̃ = transform(l)`): an allowed-token bitmask, a sparse logit bias, and
//! repetition / presence / frequency penalties from sparse token counts.
//!
//! `l̃ = penalised(l) + bias`, where a token seen `c > 0` times gets `l / r` (if `l > 0`) or `l · r`
//! (otherwise) for the repetition penalty `r`, then `- presence - c · frequency`; a token whose
//! mask bit is clear gets `-inf`. This is the order vLLM and Hugging Face apply them in.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// Penalties from the tokens a request has produced so far.
#[derive(Debug, Clone, Copy)]
pub struct Penalties<'a> {
    /// `(global token, count)`, each token at most once.
    pub counts: &'a [(u32, u32)],
    /// Multiplicative repetition penalty; 1 leaves logits unchanged.
    pub repetition: f32,
    pub presence: f32,
    pub frequency: f32,
}

impl Default for Penalties<'_> {
    fn default() -> Self {
        Penalties { counts: &[], repetition: 1.0, presence: 0.0, frequency: 0.0 }
    }
}

/// What one row may sample and how its logits are adjusted.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowConstraints<'a> {
    /// One bit per global token in 32-bit words (bit `t % 32` of word `t / 32`); set = allowed.
    /// The layout grammar engines produce. `None` allows every token.
    pub allowed: Option<&'a [u32]>,
    /// `(global token, value)` added to the logit, each token at most once.
    pub bias: &'a [(u32, f32)],
    pub penalties: Penalties<'a>,
}

/// A row's constraints prepared for scanning the vocabulary in increasing token order.
#[derive(Debug, Clone, Default)]
pub struct RowTransform<'a> {
    allowed: Option<&'a [u32]>,
    /// `(token, scale for positive logits, scale for the rest, added)`, sorted by token.
    adjust: Vec<(u32, f32, f32, f32)>,
}

impl<'a> RowTransform<'a> {
    /// Checks `c` against a vocabulary of `vocab_size` tokens and prepares it.
    pub fn new(c: &RowConstraints<'a>, vocab_size: u32, row: usize) -> Result<Self> {
        let bad = |what: String| Error::Param { row: Some(row), what };
        if let Some(mask) = c.allowed {
            let words = vocab_size.div_ceil(32) as usize;
            if mask.len() != words {
                return Err(bad(format!(
                    "the token mask has {} words, a vocabulary of {vocab_size} needs {words}",
                    mask.len()
                )));
            }
        }
        let p = &c.penalties;
        if !(p.repetition.is_finite() && p.repetition > 0.0 && p.presence.is_finite() && p.frequency.is_finite()) {
            return Err(bad(format!("penalties must be finite and repetition > 0, got {p:?}")));
        }
        // token -> (scale for positive logits, scale for the rest, added)
        let mut by_token: BTreeMap<u32, (f32, f32, f32)> = BTreeMap::new();
        for &(token, count) in p.counts {
            let added = -p.presence - count as f32 * p.frequency;
            if count > 0 && by_token.insert(token, (1.0 / p.repetition, p.repetition, added)).is_some() {
                return Err(bad(format!("token {token} is counted twice")));
            }
        }
        let mut biased = BTreeSet::new();
        for &(token, value) in c.bias {
            if !value.is_finite() || !biased.insert(token) {
                return Err(bad(format!("the bias of token {token} is {value} or given twice")));
            }
            by_token.entry(token).or_insert((1.0, 1.0, 0.0)).2 += value;
        }
        if let Some((&token, _)) = by_token.range(vocab_size..).next() {
            return Err(bad(format!("token {token} is outside the vocabulary of {vocab_size}")));
        }
        let adjust = by_token.into_iter().map(|(t, (pos, neg, added))| (t, pos, neg, added)).collect();
        Ok(RowTransform { allowed: c.allowed, adjust })
    }

    /// The allowed-token bitmask over the global vocabulary, if the row has one.
    pub fn allowed(&self) -> Option<&'a [u32]> {
        self.allowed
    }

    /// The tokens whose logit changes, increasing: `(token, scale for positive logits, scale for
    /// the rest, added)`, so that `l̃ = l · scale + added` (before the mask).
    pub fn adjustments(&self) -> &[(u32, f32, f32, f32)] {
        &self.adjust
    }

    /// Whether the row's logits pass unchanged.
    pub fn is_identity(&self) -> bool {
        self.allowed.is_none() && self.adjust.is_empty()
    }

    /// `l̃` of `logits[j]`, the logits of tokens `first_token + j`, in place.
    pub fn apply(&self, first_token: u32, logits: &mut [f32]) {
        let end = first_token + logits.len() as u32;
        let start = self.adjust.partition_point(|a| a.0 < first_token);
        for &(token, pos, neg, added) in self.adjust[start..].iter().take_while(|a| a.0 < end) {
            let l = &mut logits[(token - first_token) as usize];
            *l = *l * if *l > 0.0 { pos } else { neg } + added;
        }
        if let Some(mask) = self.allowed {
            for (j, l) in logits.iter_mut().enumerate() {
                let t = first_token + j as u32;
                if mask[(t / 32) as usize] >> (t % 32) & 1 == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }
}

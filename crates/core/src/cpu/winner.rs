//! The running winner of one (row, sample), skipping the noise of tokens that cannot win.

use crate::candidate::{pack, score_of};
use crate::noise::{gumbel_from_word, GumbelBounds};

/// The best candidate so far and its score.
pub(crate) struct Winner {
    pub best: u64,
    score: f32,
}

impl Winner {
    pub fn new(best: u64) -> Self {
        Winner { best, score: score_of(best) }
    }

    /// Whether a token of scaled logit `y` cannot win whatever its noise (the largest Gumbel
    /// value of all): it needs no noise word.
    #[inline(always)]
    pub fn out_of_reach(&self, y: f32, bounds: &GumbelBounds) -> bool {
        y + bounds.max() < self.score
    }

    /// Offers token `token` of scaled logit `y` and noise word `word`; the bound of the word's
    /// class rejects most tokens without a logarithm. Both bounds are exact.
    #[inline(always)]
    pub fn offer(&mut self, y: f32, token: u32, word: u32, bounds: &GumbelBounds) {
        if y + bounds.of_word(word) < self.score {
            return;
        }
        let score = y + gumbel_from_word(word);
        let candidate = pack(score, token);
        if candidate > self.best {
            self.best = candidate;
            self.score = score;
        }
    }
}

//! Gumbel noise as a pure function of `(seed, offset, sample, global token)` (DESIGN.md §3.2).
//!
//! One Philox evaluation, counter `(t >> 2, s, offset_lo, offset_hi)` under key
//! `(seed_lo, seed_hi)`, yields the words of four consecutive tokens; token `t` takes word `t & 3`.

use crate::philox::philox4x32_10;

/// Largest uniform the noise can use: `1 - 2^-24`, the largest f32 below 1.
const UNIFORM_MAX: f32 = 1.0 - 1.0 / 16_777_216.0;
const TWO_POW_MINUS_32: f32 = 1.0 / 4_294_967_296.0;

/// The largest Gumbel value the noise can produce (word 0 gives the smallest uniform).
/// A token whose `y + GUMBEL_MAX` is below the running best score cannot win: backends may skip
/// its noise without changing any sample.
pub fn gumbel_max() -> f32 {
    widen(gumbel_from_word(0))
}

/// A bound a little above `g`: the compiler may evaluate the logarithms of a constant word itself,
/// an ulp away from the library's run-time result, and a bound must hold for both.
fn widen(g: f32) -> f32 {
    g + g.abs() * 1e-6 + 1e-6
}

/// Philox key of a row's seed.
#[inline(always)]
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Philox counter of the four-token group holding `token`.
#[inline(always)]
pub fn counter(offset: u64, sample: u32, token: u32) -> [u32; 4] {
    [token >> 2, sample, offset as u32, (offset >> 32) as u32]
}

/// The 32-bit noise word of one token.
#[inline]
pub fn word(seed: u64, offset: u64, sample: u32, token: u32) -> u32 {
    philox4x32_10(counter(offset, sample, token), key(seed))[(token & 3) as usize]
}

/// `w = min((f32(word) + 0.5) * 2^-32, 1 - 2^-24)`, evaluated in f32 in that order.
#[inline(always)]
pub fn uniform_from_word(word: u32) -> f32 {
    ((word as f32 + 0.5) * TWO_POW_MINUS_32).min(UNIFORM_MAX)
}

/// `E = -log1p(-w)`: an Exp(1) variate, accurate for the tiny `w` that winners come from.
#[inline(always)]
pub fn exponential_from_uniform(w: f32) -> f32 {
    -(-w).ln_1p()
}

/// `g = -ln(E)`: a standard Gumbel variate.
#[inline(always)]
pub fn gumbel_from_exponential(e: f32) -> f32 {
    -e.ln()
}

#[inline(always)]
pub fn gumbel_from_word(word: u32) -> f32 {
    gumbel_from_exponential(exponential_from_uniform(uniform_from_word(word)))
}

/// The Gumbel noise of one token.
#[inline]
pub fn gumbel(seed: u64, offset: u64, sample: u32, token: u32) -> f32 {
    gumbel_from_word(word(seed, offset, sample, token))
}

/// Upper bounds of the Gumbel value by the leading zeros of the noise word: `g` decreases as the
/// word grows, so a word with `z` leading zeros gives at most the `g` of `2^(31 - z)` (of word 0 for
/// `z = 32`). A token whose `y + bound` is below the running best cannot win, and is rejected with
/// the Philox word alone, no logarithm: for real logits, nearly every token.
pub struct GumbelBounds([f32; 33]);

impl GumbelBounds {
    /// The bounds, computed once per process (33 pairs of logarithms: a row's whole sampling cost
    /// where only a few survivors are sampled).
    pub fn shared() -> &'static Self {
        static BOUNDS: std::sync::OnceLock<GumbelBounds> = std::sync::OnceLock::new();
        BOUNDS.get_or_init(GumbelBounds::new)
    }

    pub fn new() -> Self {
        GumbelBounds(std::array::from_fn(|z| widen(gumbel_from_word(if z == 32 { 0 } else { 1u32 << (31 - z) }))))
    }

    #[inline(always)]
    pub fn of_word(&self, word: u32) -> f32 {
        self.0[word.leading_zeros() as usize]
    }

    /// The bound of every word: [`gumbel_max`].
    #[inline(always)]
    pub fn max(&self) -> f32 {
        self.0[32]
    }
}

impl Default for GumbelBounds {
    fn default() -> Self {
        Self::new()
    }
}

/// Noise words along increasing tokens of one `(seed, offset, sample)` stream, evaluating Philox
/// once per four-token group however the tokens are visited.
pub struct NoiseStream {
    key: [u32; 2],
    offset: u64,
    sample: u32,
    group: Option<u32>,
    words: [u32; 4],
}

impl NoiseStream {
    pub fn new(seed: u64, offset: u64, sample: u32) -> Self {
        NoiseStream { key: key(seed), offset, sample, group: None, words: [0; 4] }
    }

    /// The noise word of `token`.
    #[inline]
    pub fn word(&mut self, token: u32) -> u32 {
        let group = token >> 2;
        if self.group != Some(group) {
            self.words = philox4x32_10(counter(self.offset, self.sample, token), self.key);
            self.group = Some(group);
        }
        self.words[(token & 3) as usize]
    }

    #[inline]
    pub fn gumbel(&mut self, token: u32) -> f32 {
        gumbel_from_word(self.word(token))
    }
}

//! Per-row sampling parameters and the request a backend receives.

use crate::constraints::RowConstraints;
use crate::features::{Feature, Features};
use crate::tensor::HiddenRef;
use crate::truncation::Truncation;

/// Parameters of one row (request) of a batch.
///
/// The noise of a row is a pure function of `(seed, offset, sample, token)`: rows that share
/// `(seed, offset)` draw the same noise. Give each request its own seed (or derive it with
/// [`derive_row_seed`]) and advance `offset` at every decode step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowParams {
    /// Softmax temperature; 0 means greedy (the argmax, no noise).
    pub temperature: f32,
    pub seed: u64,
    /// The decode step or position; the engine advances it every step.
    pub offset: u64,
}

impl RowParams {
    pub fn new(temperature: f32, seed: u64, offset: u64) -> Self {
        RowParams { temperature, seed, offset }
    }

    pub fn greedy() -> Self {
        RowParams { temperature: 0.0, seed: 0, offset: 0 }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// `1 / T`, computed once per row in f32 (DESIGN.md §3.3); 1 for greedy rows.
    pub fn inv_temperature(&self) -> f32 {
        if self.is_greedy() {
            1.0
        } else {
            1.0 / self.temperature
        }
    }
}

/// SplitMix64's output function: a bijective 64-bit mix.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of request `request_id` under one call seed: distinct requests get unrelated streams.
pub fn derive_row_seed(call_seed: u64, request_id: u64) -> u64 {
    splitmix64(call_seed ^ splitmix64(request_id))
}

/// One sampling call: hidden states, one [`RowParams`] per row, `samples` draws per row.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub hidden: HiddenRef<'a>,
    pub rows: &'a [RowParams],
    pub samples: u32,
    /// One [`RowConstraints`] per row, or none for unconstrained rows.
    pub constraints: Option<&'a [RowConstraints<'a>]>,
    /// Also report each sampled token's logprob and each row's log-normaliser.
    pub logprobs: bool,
    /// One [`Truncation`] per row (top-k, top-p, min-p), or none.
    pub truncation: Option<&'a [Truncation]>,
    /// Also report each row's `top_logprobs` most likely tokens with their logprobs (0: none).
    pub top_logprobs: u32,
}

impl<'a> Request<'a> {
    pub fn new(hidden: HiddenRef<'a>, rows: &'a [RowParams], samples: u32) -> Self {
        Request { hidden, rows, samples, constraints: None, logprobs: false, truncation: None, top_logprobs: 0 }
    }

    /// Adds per-row constraints (mask, bias, penalties), applied before temperature.
    pub fn with_constraints(mut self, constraints: &'a [RowConstraints<'a>]) -> Self {
        self.constraints = Some(constraints);
        self
    }

    /// Asks for logprobs: of each sampled token, and `logZ` per row, under the distribution the
    /// row samples from — constraints, temperature and truncation applied (renormalised over the
    /// survivors); greedy rows report the untempered distribution, truncated likewise.
    pub fn with_logprobs(mut self) -> Self {
        self.logprobs = true;
        self
    }

    /// Truncates each row's distribution (top-k, then top-p, then min-p; see
    /// [`crate::truncation`]), after constraints and temperature. Greedy rows draw the argmax,
    /// which always survives: truncation changes only their logprobs.
    pub fn with_truncation(mut self, truncation: &'a [Truncation]) -> Self {
        self.truncation = Some(truncation);
        self
    }

    /// Asks for the `n ≤ 20` most likely tokens of each row with their logprobs, under the same
    /// distribution as [`Request::with_logprobs`] (which this turns on too).
    pub fn with_top_logprobs(mut self, n: u32) -> Self {
        self.top_logprobs = n;
        self.logprobs = true;
        self
    }

    /// The optional features this request uses.
    pub fn features(&self) -> Features {
        [
            (self.constraints.is_some(), Feature::Constraints),
            (self.logprobs, Feature::Logprobs),
            (self.truncation.is_some(), Feature::Truncation),
            (self.top_logprobs > 0, Feature::TopLogprobs),
        ]
        .into_iter()
        .filter_map(|(used, f)| used.then_some(f))
        .collect()
    }

    /// Row `b`'s truncation, when it can remove a token.
    pub fn row_truncation(&self, b: usize) -> Option<&'a Truncation> {
        self.truncation.map(|t| &t[b]).filter(|t| t.is_active())
    }

    /// Number of output tokens: `batch × samples`.
    pub fn outputs(&self) -> usize {
        self.hidden.batch * self.samples as usize
    }
}

//! Per-row sampling parameters and the request a backend receives.

use crate::constraints::RowConstraints;
use crate::tensor::HiddenRef;

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
}

impl<'a> Request<'a> {
    pub fn new(hidden: HiddenRef<'a>, rows: &'a [RowParams], samples: u32) -> Self {
        Request { hidden, rows, samples, constraints: None, logprobs: false }
    }

    /// Adds per-row constraints (mask, bias, penalties), applied before temperature.
    pub fn with_constraints(mut self, constraints: &'a [RowConstraints<'a>]) -> Self {
        self.constraints = Some(constraints);
        self
    }

    /// Asks for logprobs: of each sampled token, under the row's processed distribution
    /// (constraints and temperature applied; untempered for greedy rows), and `logZ` per row.
    pub fn with_logprobs(mut self) -> Self {
        self.logprobs = true;
        self
    }

    /// Number of output tokens: `batch × samples`.
    pub fn outputs(&self) -> usize {
        self.hidden.batch * self.samples as usize
    }
}

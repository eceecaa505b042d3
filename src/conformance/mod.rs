//! The conformance battery: written once, run against every backend (DESIGN.md §5).
//!
//! `tests/conformance.rs` runs it on every backend the build has and the machine can run;
//! `flashsampling verify --backend X` runs it on one backend and prints every case — the
//! portability test anyone can run on their own GPU.

mod constraints;
mod logprobs;
mod pathwise;
mod problem;
mod robustness;
mod statistical;
mod truncation;

use std::time::Instant;

use flashsampling_core::{Backend, DType};

pub use problem::{Problem, Profile};

/// A case passes when every p-value it computes exceeds this.
pub const P_THRESHOLD: f64 = 1e-3;

/// How large the battery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Sized for a CPU in CI: every property, modest sample counts.
    Quick,
    /// Sized for a GPU: more samples, and the large case (V = 128,256, 10,000,000 samples).
    Full,
}

/// One case of the battery.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    Distribution { profile: Profile, vocab: usize, dim: usize, dtype: DType, samples: u32 },
    Tail { probability: f64, samples_per_call: u32, calls: u32 },
    Independence { samples: u32 },
    BatchInvariance,
    ShardInvariance,
    ReferenceAgreement { rows: usize },
    Constraints { samples: u32 },
    Logprobs,
    Truncation { samples: u32 },
    TruncationTies { samples: u32 },
    TruncationUncertified { samples: u32 },
    TopLogprobs,
    BadRows,
    BadInput,
    EveryOutputWritten,
}

impl Case {
    /// Whether the one-thread reference sampler finishes this case in seconds.
    pub fn cheap_for_reference(&self) -> bool {
        match &self.check {
            Check::Distribution { vocab, samples, .. } => (*vocab as u64) * u64::from(*samples) <= 20_000_000,
            Check::Tail { .. } | Check::ReferenceAgreement { .. } => false,
            _ => true,
        }
    }
}

/// The outcome of one case on one backend.
#[derive(Debug, Clone)]
pub struct Report {
    pub case: String,
    pub backend: String,
    pub passed: bool,
    /// The Bonferroni-adjusted smallest p-value of the case's statistical tests, if it has any.
    pub p_value: Option<f64>,
    pub detail: String,
    pub seconds: f64,
}

/// What a check found: pass or fail, the smallest p-value, and a line of detail.
struct Outcome {
    passed: bool,
    p_value: Option<f64>,
    detail: String,
}

impl Outcome {
    fn pass(detail: impl Into<String>) -> Self {
        Outcome { passed: true, p_value: None, detail: detail.into() }
    }

    fn fail(detail: impl Into<String>) -> Self {
        Outcome { passed: false, p_value: None, detail: detail.into() }
    }

    /// A case of several tests reports their smallest p-value times their number (Bonferroni), so
    /// that each case, however many rows it tests, falsely fails with probability at most
    /// [`P_THRESHOLD`].
    fn from_tests(p_values: &[f64], detail: impl Into<String>) -> Self {
        let smallest = p_values.iter().copied().fold(1.0, f64::min);
        let p_value = (smallest * p_values.len() as f64).min(1.0);
        Outcome { passed: p_value > P_THRESHOLD, p_value: Some(p_value), detail: detail.into() }
    }
}

/// The distribution battery's vocabularies: from 2 to 262,208, many not multiples of 4, 32 or 128.
const DISTRIBUTIONS: [(usize, Profile, usize, DType); 11] = [
    (2, Profile::Flat, 8, DType::Bf16),
    (3, Profile::Ramp, 16, DType::F32),
    (5, Profile::Gaussian(1.0), 24, DType::F16),
    (31, Profile::Peaked, 64, DType::Bf16),
    (127, Profile::Masked(2.0), 32, DType::F32),
    (1000, Profile::Gaussian(2.0), 64, DType::Bf16),
    (4099, Profile::Ramp, 40, DType::Bf16),
    (32_769, Profile::Gaussian(1.0), 128, DType::F16),
    (65_537, Profile::Flat, 16, DType::F32),
    (151_936, Profile::Masked(3.0), 64, DType::Bf16),
    (262_208, Profile::Gaussian(3.0), 64, DType::Bf16),
];

/// Budget of (sample × token) visits per distribution case.
fn samples_for(vocab: usize, level: Level) -> u32 {
    let (budget, max) = match level {
        Level::Quick => (4e8, 20_000.0),
        Level::Full => (2e10, 200_000.0),
    };
    (budget / (vocab as f64 * statistical::TEMPERATURES.len() as f64)).clamp(1_000.0, max) as u32
}

/// The battery at `level`.
pub fn battery(level: Level) -> Vec<Case> {
    let mut cases: Vec<Case> = DISTRIBUTIONS
        .iter()
        .map(|&(vocab, profile, dim, dtype)| Case {
            name: format!("distribution {} V={vocab} D={dim} {}", profile.name(), dtype.name()),
            check: Check::Distribution { profile, vocab, dim, dtype, samples: samples_for(vocab, level) },
        })
        .collect();
    if level == Level::Full {
        cases.push(Case {
            name: "distribution gaussian V=128256 D=64 bf16, 10,000,000 samples".into(),
            check: Check::Distribution {
                profile: Profile::Gaussian(1.0),
                vocab: 128_256,
                dim: 64,
                dtype: DType::Bf16,
                samples: 10_000_000,
            },
        });
    }
    let (samples_per_call, calls) = match level {
        Level::Quick => (250_000, 10),
        Level::Full => (2_500_000, 10),
    };
    let fixed = [
        (
            "tail: a token of probability ~1e-6 appears at its rate",
            Check::Tail { probability: 1e-6, samples_per_call, calls },
        ),
        ("independent streams: seeds, offsets, sample indices", Check::Independence { samples: 40_000 }),
        ("batch invariance", Check::BatchInvariance),
        ("vocabulary-shard invariance (3 uneven shards = whole head)", Check::ShardInvariance),
        ("agreement with cpu-reference, 10,000 rows", Check::ReferenceAgreement { rows: 10_000 }),
        ("constraints: token mask, logit bias, penalties", Check::Constraints { samples: 20_000 }),
        ("logprobs and log-normaliser against f64", Check::Logprobs),
        (
            "truncation: top-k, top-p, min-p and combinations against the exact truncated softmax",
            Check::Truncation { samples: 20_000 },
        ),
        ("truncation: ties at the cut-off keep the lowest token ids", Check::TruncationTies { samples: 20_000 }),
        (
            "truncation: rows no ranked list can certify (fallback) are exact",
            Check::TruncationUncertified { samples: 10_000 },
        ),
        ("top-N logprobs against f64, truncated and not", Check::TopLogprobs),
        ("bad rows: NaN and all-masked rows get a status, others unaffected", Check::BadRows),
        ("bad input refused with the right error", Check::BadInput),
        ("every output written (poisoned buffer, vocabulary shard)", Check::EveryOutputWritten),
    ];
    cases.extend(fixed.into_iter().map(|(name, check)| Case { name: name.into(), check }));
    cases
}

/// Runs one case on one backend. A backend error is a failed case, never a panic.
pub fn run(case: &Case, backend: &dyn Backend) -> Report {
    let start = Instant::now();
    let outcome = match &case.check {
        Check::Distribution { profile, vocab, dim, dtype, samples } => {
            statistical::distribution(backend, *profile, *vocab, *dim, *dtype, *samples)
        }
        Check::Tail { probability, samples_per_call, calls } => {
            statistical::tail(backend, *probability, *samples_per_call, *calls)
        }
        Check::Independence { samples } => statistical::independence(backend, *samples),
        Check::BatchInvariance => pathwise::batch_invariance(backend),
        Check::ShardInvariance => pathwise::shard_invariance(backend),
        Check::ReferenceAgreement { rows } => pathwise::reference_agreement(backend, *rows),
        Check::Constraints { samples } => constraints::constraints(backend, *samples),
        Check::Logprobs => logprobs::logprobs(backend),
        Check::Truncation { samples } => truncation::truncation(backend, *samples),
        Check::TruncationTies { samples } => truncation::ties(backend, *samples),
        Check::TruncationUncertified { samples } => truncation::uncertified(backend, *samples),
        Check::TopLogprobs => truncation::top_logprobs(backend),
        Check::BadRows => robustness::bad_rows(backend),
        Check::BadInput => robustness::bad_input(backend),
        Check::EveryOutputWritten => robustness::every_output_written(backend),
    };
    let outcome = outcome.unwrap_or_else(|e| Outcome::fail(format!("backend error: {e}")));
    Report {
        case: case.name.clone(),
        backend: backend.name().to_string(),
        passed: outcome.passed,
        p_value: outcome.p_value,
        detail: outcome.detail,
        seconds: start.elapsed().as_secs_f64(),
    }
}

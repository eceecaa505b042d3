//! Shared vocabulary of the benchmarks (DESIGN.md §6): the shapes, the batches and one measured
//! row, so that every backend's benchmark prints and writes the same table; and the feature
//! variants timed through the trait on every backend.

use std::time::Instant;

use crate::backend::{Backend, LmHead};
use crate::error::Result;
use crate::params::{Request, RowParams};
use crate::tensor::HiddenRef;
use crate::truncation::Truncation;

/// `(D, V)` shapes of the benchmark.
pub const SHAPES: [(usize, usize); 6] =
    [(4096, 151_936), (8192, 128_256), (2048, 151_936), (2880, 201_088), (7168, 163_840), (16384, 128_256)];

/// Batch sizes of the benchmark.
pub const BATCHES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// One measured configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub backend: String,
    pub device: String,
    /// What was timed: `fused`, or a peer such as `cublas-gemm` or `unfused`.
    pub variant: String,
    pub dim: usize,
    pub vocab: usize,
    pub batch: usize,
    pub dtype: String,
    /// Median time of one call, in microseconds.
    pub median_us: f64,
    /// The larger of the bandwidth and compute floors, in microseconds (0 when not measured).
    pub floor_us: f64,
}

impl Record {
    pub const CSV_HEADER: &'static str =
        "backend,device,variant,dim,vocab,batch,dtype,median_us,floor_us,fraction_of_floor";

    /// `floor / time`: 1.0 is the floor.
    pub fn fraction_of_floor(&self) -> f64 {
        if self.floor_us > 0.0 {
            self.floor_us / self.median_us
        } else {
            0.0
        }
    }

    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{:.2},{:.2},{:.4}",
            self.backend,
            self.device.replace(',', " "),
            self.variant,
            self.dim,
            self.vocab,
            self.batch,
            self.dtype,
            self.median_us,
            self.floor_us,
            self.fraction_of_floor()
        )
    }
}

/// Bytes that must move for one call: `W` once and `H` once.
pub fn bytes_moved(dim: usize, vocab: usize, batch: usize, w_bytes: usize, h_bytes: usize) -> f64 {
    (vocab * dim * w_bytes + batch * dim * h_bytes) as f64
}

/// Median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    assert!(!samples.is_empty(), "median of nothing");
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        0.5 * (samples[n / 2 - 1] + samples[n / 2])
    }
}

/// Batches up to which [`trait_path_times`] runs: serving batches, timed by the host's clock.
pub const TRAIT_PATH_MAX_BATCH: usize = 64;

/// Host wall-clock medians of `iters` calls of [`Backend::sample`] on `head` after one warm-up
/// (hidden states uploaded, tokens and outputs read back: what a caller of the trait waits for), one
/// sample per row: plain, and of the variants the backend offers, with logprobs, with top-k 50 +
/// top-p 0.9 on every row, and with both.
pub fn trait_path_times(
    backend: &dyn Backend,
    head: &LmHead,
    hidden: HiddenRef<'_>,
    iters: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let rows: Vec<RowParams> = (0..hidden.batch as u64).map(|i| RowParams::new(1.0, 0x1234 + i, 7)).collect();
    let truncation = vec![Truncation::top_k(50).and_top_p(0.9); hidden.batch];
    let plain = Request::new(hidden, &rows, 1);
    let variants = [
        ("trait-plain", plain),
        ("trait-logprobs", plain.with_logprobs()),
        ("trait-topk50-topp0.9", plain.with_truncation(&truncation)),
        ("trait-topk50-topp0.9-logprobs", plain.with_truncation(&truncation).with_logprobs()),
    ];
    let offered = backend.features();
    let mut out = Vec::new();
    for (variant, req) in variants.into_iter().filter(|(_, req)| req.features().first_missing(offered).is_none()) {
        backend.sample(head, &req)?;
        let mut times: Vec<f64> = (0..iters.max(1))
            .map(|_| {
                let start = Instant::now();
                backend.sample(head, &req).map(|_| start.elapsed().as_secs_f64() * 1e6)
            })
            .collect::<Result<_>>()?;
        out.push((variant, median(&mut times)));
    }
    Ok(out)
}

//! Shared vocabulary of the benchmarks (DESIGN.md §6): the shapes, the batches and one measured
//! row, so that every backend's benchmark prints and writes the same table.

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

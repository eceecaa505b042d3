//! Deterministic pseudo-random test data: for tests, the conformance battery, demos and benchmarks.
//! Never zeros: every generator draws fresh values from a seed.

use rayon::prelude::*;

use crate::params::splitmix64;
use crate::tensor::{DType, OwnedTensor};
use half::{bf16, f16};

/// A small SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(splitmix64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const CHUNK: usize = 1 << 14;

/// `len` normal values times `scale`, as `dtype`, generated in parallel; the values depend only on
/// `(seed, len, scale)`, not on the number of threads.
pub fn normal_tensor(dtype: DType, len: usize, seed: u64, scale: f64) -> OwnedTensor {
    fn fill<T: Send>(len: usize, seed: u64, scale: f64, conv: impl Fn(f64) -> T + Sync) -> Vec<T> {
        (0..len.div_ceil(CHUNK))
            .into_par_iter()
            .flat_map_iter(|c| {
                let mut rng = TestRng::new(seed ^ splitmix64(c as u64));
                let n = CHUNK.min(len - c * CHUNK);
                (0..n).map(move |_| rng.normal() * scale)
            })
            .map(&conv)
            .collect()
    }
    match dtype {
        DType::Bf16 => OwnedTensor::Bf16(fill(len, seed, scale, bf16::from_f64)),
        DType::F16 => OwnedTensor::F16(fill(len, seed, scale, f16::from_f64)),
        DType::F32 => OwnedTensor::F32(fill(len, seed, scale, |x| x as f32)),
    }
}

//! A synthetic LM head for demos and benchmarks: random normal weights and hidden states (never
//! zeros), scaled so that logits have a spread like a real model's.

use std::time::Instant;

use flashsampling::core::tensor::OwnedTensor;
use flashsampling::core::testdata::normal_tensor;
use flashsampling::DType;

pub struct Synthetic {
    pub weights: OwnedTensor,
    pub hidden: OwnedTensor,
    pub dim: usize,
    pub vocab: usize,
    pub batch: usize,
}

impl Synthetic {
    pub fn new(dim: usize, vocab: usize, batch: usize, dtype: DType, seed: u64) -> Self {
        let start = Instant::now();
        eprintln!(
            "generating a synthetic LM head: W [{vocab}, {dim}] {} ({:.2} GB) …",
            dtype.name(),
            gb(vocab * dim * dtype.size())
        );
        // Logit standard deviation ≈ 2: each of the D products has variance (2 / √D)² · 1.
        let weights = normal_tensor(dtype, vocab * dim, seed, 2.0 / (dim as f64).sqrt());
        let hidden = normal_tensor(dtype, batch * dim, seed ^ 0x4849_4444_454E, 1.0);
        eprintln!("  done in {:.1} s", start.elapsed().as_secs_f64());
        Synthetic { weights, hidden, dim, vocab, batch }
    }

    pub fn bytes(&self) -> f64 {
        let size = self.weights.view().dtype().size();
        ((self.vocab + self.batch) * self.dim * size) as f64
    }
}

pub fn gb(bytes: usize) -> f64 {
    bytes as f64 / 1e9
}

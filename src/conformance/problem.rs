//! Test problems: an LM head and hidden states built so that the logits follow a chosen profile,
//! from fresh pseudo-random values (never zeros), with the exact f64 logits for reference.

use flashsampling_core::exact;
use flashsampling_core::tensor::OwnedTensor;
use flashsampling_core::testdata::TestRng;
use flashsampling_core::{DType, HiddenRef, LmHeadRef, Result};

/// The shape of the logits along the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// All logits near 0: a near-uniform distribution.
    Flat,
    /// Linear from 0 down to -8.
    Ramp,
    /// Gaussian logits of this standard deviation.
    Gaussian(f64),
    /// Gaussian(1) logits and one token 8 above them.
    Peaked,
    /// Gaussian logits of this deviation, 30% of the tokens at `-inf`.
    Masked(f64),
}

impl Profile {
    pub fn name(&self) -> String {
        match self {
            Profile::Flat => "flat".into(),
            Profile::Ramp => "ramp".into(),
            Profile::Gaussian(s) => format!("gaussian(σ={s})"),
            Profile::Peaked => "peaked".into(),
            Profile::Masked(s) => format!("masked(σ={s}, 30% -inf)"),
        }
    }

    /// Target logits for `vocab` tokens.
    pub fn logits(&self, vocab: usize, rng: &mut TestRng) -> Vec<f64> {
        match *self {
            Profile::Flat => vec![0.0; vocab],
            Profile::Ramp => (0..vocab).map(|t| -8.0 * t as f64 / vocab as f64).collect(),
            Profile::Gaussian(sigma) => (0..vocab).map(|_| sigma * rng.normal()).collect(),
            Profile::Peaked => {
                let peak = (rng.next_u64() % vocab as u64) as usize;
                (0..vocab).map(|t| rng.normal() + if t == peak { 8.0 } else { 0.0 }).collect()
            }
            Profile::Masked(sigma) => {
                (0..vocab).map(|_| if rng.uniform() < 0.3 { f64::NEG_INFINITY } else { sigma * rng.normal() }).collect()
            }
        }
    }
}

/// `W: [vocab, dim]`, `H: [batch, dim]` with `W[t][0] = target_t`, `H[b][0] ≈ 1`, and small random
/// values elsewhere, so that `H[b] · W[t] ≈ target_t` plus a little row-specific noise.
pub struct Problem {
    pub weights: OwnedTensor,
    pub hidden: OwnedTensor,
    pub vocab: usize,
    pub dim: usize,
    pub batch: usize,
}

impl Problem {
    pub fn new(target: &[f64], batch: usize, dim: usize, dtype: DType, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let vocab = target.len();
        let mut w = Vec::with_capacity(vocab * dim);
        for &z in target {
            w.push(z as f32);
            w.extend((1..dim).map(|_| (0.05 * rng.normal()) as f32));
        }
        let mut h = Vec::with_capacity(batch * dim);
        for _ in 0..batch {
            h.push((1.0 + 0.1 * rng.uniform()) as f32);
            h.extend((1..dim).map(|_| (0.5 * rng.normal()) as f32));
        }
        Problem {
            weights: OwnedTensor::from_f32(&w, dtype),
            hidden: OwnedTensor::from_f32(&h, dtype),
            vocab,
            dim,
            batch,
        }
    }

    /// The same problem with every hidden row equal to row 0.
    pub fn with_repeated_row(mut self) -> Self {
        let dim = self.dim;
        let row: Vec<f32> = (0..dim).map(|k| self.hidden.view().get(k)).collect();
        let all: Vec<f32> = (0..self.batch).flat_map(|_| row.iter().copied()).collect();
        self.hidden = OwnedTensor::from_f32(&all, self.hidden.view().dtype());
        self
    }

    /// The same problem with the rows of `W` of tokens `copies` made identical to that of `source`:
    /// their logits tie exactly.
    pub fn with_copied_tokens(mut self, source: usize, copies: &[usize]) -> Self {
        let w = self.weights.view();
        let mut values: Vec<f32> = (0..w.len()).map(|i| w.get(i)).collect();
        for &t in copies {
            values.copy_within(source * self.dim..(source + 1) * self.dim, t * self.dim);
        }
        self.weights = OwnedTensor::from_f32(&values, w.dtype());
        self
    }

    pub fn head(&self) -> LmHeadRef<'_> {
        LmHeadRef::new(self.weights.view(), self.dim).expect("a well-formed problem")
    }

    pub fn hidden(&self) -> HiddenRef<'_> {
        HiddenRef::new(self.hidden.view(), self.dim).expect("a well-formed problem")
    }

    /// Hidden states of rows `rows` only, in that order.
    pub fn hidden_rows(&self, rows: &[usize]) -> OwnedTensor {
        let v = self.hidden.view();
        let values: Vec<f32> = rows.iter().flat_map(|&b| (0..self.dim).map(move |k| v.get(b * self.dim + k))).collect();
        OwnedTensor::from_f32(&values, v.dtype())
    }

    /// Exact f64 logits of row `b`.
    pub fn exact_logits(&self, b: usize) -> Vec<f64> {
        exact::logits_f64(&self.head(), &self.hidden(), b)
    }
}

/// Samples `rows` of a loaded problem: convenience for the checks.
pub(super) fn sample(
    backend: &dyn flashsampling_core::Backend,
    head: &flashsampling_core::LmHead,
    hidden: &OwnedTensor,
    dim: usize,
    rows: &[flashsampling_core::RowParams],
    samples: u32,
) -> Result<flashsampling_core::SampleOutput> {
    let hidden = HiddenRef::new(hidden.view(), dim)?;
    backend.sample(head, &flashsampling_core::Request::new(hidden, rows, samples))
}

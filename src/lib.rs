//! # FlashSampling
//!
//! Exact samples from `softmax(H · Wᵀ / T)` — a language model's LM head — without writing the
//! `[batch, vocab]` logits anywhere: logits are computed tile by tile, Gumbel noise is added, each
//! tile keeps its best candidate and a `max` reduction picks the winner (arXiv 2603.15854).
//!
//! The backend is chosen at run time ([`BackendKind`]); the CPU backend runs anywhere.
//!
//! ```
//! use flashsampling::{bf16, derive_row_seed, open, BackendKind, HiddenRef, LmHeadRef, Request, RowParams, RowStatus, Tensor};
//!
//! # fn main() -> flashsampling::Result<()> {
//! let (vocab, dim, batch) = (1000, 64, 2);
//! // A synthetic LM head and hidden states (bf16, row-major).
//! let w: Vec<bf16> = (0..vocab * dim).map(|i| bf16::from_f32(((i * 7919 % 997) as f32 / 997.0) - 0.5)).collect();
//! let h: Vec<bf16> = (0..batch * dim).map(|i| bf16::from_f32(((i * 104_729 % 991) as f32 / 991.0) - 0.5)).collect();
//!
//! let backend = open(BackendKind::Auto)?; // FLASHSAMPLING_BACKEND=cpu forces the CPU
//! let head = backend.load_lm_head(LmHeadRef::new(Tensor::Bf16(&w), dim)?)?; // once, reused
//!
//! // Row 0 samples at T = 0.8 with its own seed; row 1 is greedy. Advance `offset` every step.
//! let step = 0;
//! let rows = [RowParams::new(0.8, derive_row_seed(42, 0), step), RowParams::greedy()];
//! let out = backend.sample(&head, &Request::new(HiddenRef::new(Tensor::Bf16(&h), dim)?, &rows, 4))?;
//!
//! assert_eq!(out.tokens.len(), batch * 4);
//! assert!(out.status.iter().all(|s| *s == RowStatus::Ok));
//! assert!(out.row(1).iter().all(|&t| t == out.row(1)[0])); // greedy: one token
//! # Ok(())
//! # }
//! ```

mod choice;

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
pub mod conformance;

pub use choice::{open, probe, BackendKind, BACKEND_ENV};
pub use flashsampling_core as core;
pub use flashsampling_core::{
    bf16, derive_row_seed, f16, Backend, BackendInfo, DType, DeviceInfo, Error, Feature, Features, HiddenRef, LmHead,
    LmHeadRef, Request, Result, RowConstraints, RowParams, RowStatus, SampleOutput, Tensor, TopLogprobs, Truncation,
};
/// The CUDA backend's own API: raw device pointers on the caller's stream.
#[cfg(feature = "cuda")]
pub use flashsampling_cuda as cuda;

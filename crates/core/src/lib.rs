//! `flashsampling-core`: the contract every FlashSampling backend implements.
//!
//! - [`philox`] and [`noise`]: the counter-based Gumbel noise, a pure function of
//!   `(seed, offset, sample, global token)` (DESIGN.md §3.2);
//! - [`candidate`]: the packed `u64` candidate and its `max` reduction (§3.4);
//! - [`tensor`], [`params`], [`validate`]: inputs and their checks (§3.1, §3.5);
//! - [`backend`]: the trait the CPU, CUDA and WGSL backends implement;
//! - [`cpu`]: the exact reference sampler and the fast multi-threaded CPU backend;
//! - [`constraints`], [`truncation`] and [`logsumexp`]: per-row constraints, exact top-k / top-p /
//!   min-p, and the log-normaliser behind logprobs (§3.6, §3.7); [`features`]: which of them a
//!   backend offers;
//! - [`exact`] and [`stats`]: exact f64 distributions and the statistical test kit.

pub mod backend;
pub mod bench;
pub mod candidate;
pub mod constraints;
pub mod cpu;
pub mod error;
pub mod exact;
pub mod features;
pub mod logsumexp;
pub mod noise;
pub mod output;
pub mod params;
pub mod philox;
pub mod ranked;
pub mod stats;
pub mod survivors;
pub mod tensor;
pub mod testdata;
pub mod truncation;
pub mod validate;

pub use backend::{Backend, BackendInfo, DeviceInfo, LmHead, RowOutputs};
pub use constraints::{Penalties, RowConstraints};
pub use error::{Error, Result};
pub use features::{Feature, Features};
pub use output::{RowStatus, SampleOutput, TopLogprobs};
pub use params::{derive_row_seed, Request, RowParams};
pub use tensor::{DType, HiddenRef, LmHeadRef, Tensor};
pub use truncation::Truncation;

pub use half::{bf16, f16};

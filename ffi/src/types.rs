//! Plain-data types and codes shared with C.

use flashsampling::{BackendKind, DType, Feature, Features, RowParams, RowStatus};

use crate::error::{fs_status, Failure};

/// Backend codes for `flashsampling_context_create`.
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum fs_backend {
    /// `FLASHSAMPLING_BACKEND` if set, otherwise CUDA, then wgpu, then the CPU.
    FS_BACKEND_AUTO = 0,
    FS_BACKEND_CPU = 1,
    /// The plain reference sampler: slow, for checking the others.
    FS_BACKEND_CPU_REFERENCE = 2,
    FS_BACKEND_CUDA = 3,
    FS_BACKEND_WGPU = 4,
}

/// Element-type codes of weights and hidden states (row-major, native endianness).
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum fs_dtype {
    FS_DTYPE_BF16 = 0,
    FS_DTYPE_F16 = 1,
    FS_DTYPE_F32 = 2,
}

/// Per-row outcome written to the caller's status buffer (one byte per row).
#[repr(u8)]
#[derive(Debug, Clone, Copy)]
pub enum fs_row_status {
    /// Every sample of the row is a token drawn from the row's distribution.
    FS_ROW_OK = 0,
    /// Every score of the row is -inf: nothing to sample; the row's tokens are 0.
    FS_ROW_ALL_MASKED = 1,
    /// A logit of the row is NaN (NaN or infinite inputs); the row's tokens are 0.
    FS_ROW_NAN_LOGITS = 2,
    /// The CUDA path only (parameters in device memory are checked on the device): the row's
    /// temperature is negative, NaN, infinite or too small to invert; the row's tokens are 0.
    FS_ROW_INVALID_PARAMS = 3,
}

/// Optional sampling features: bits of `flashsampling_context_features`. A backend refuses a
/// call that asks for a feature it lacks with FS_ERROR_UNSUPPORTED, before any work.
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum fs_feature {
    /// Token mask, logit bias and penalties (`fs_sample_options` mask, bias, penalty members).
    FS_FEATURE_CONSTRAINTS = 1,
    /// Sampled-token logprobs and log-normalisers (`fs_sample_outputs` logprobs, log_normalizer).
    FS_FEATURE_LOGPROBS = 2,
    /// Top-k / top-p / min-p (`fs_sample_options.truncation`).
    FS_FEATURE_TRUNCATION = 4,
    /// The top-N tokens with their logprobs (`fs_sample_outputs.top_n`).
    FS_FEATURE_TOP_LOGPROBS = 8,
}

/// Parameters of one row (request) of a batch.
///
/// The noise of a row is a pure function of (seed, offset, sample, token): give each request its
/// own seed and advance `offset` at every decode step.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_row_params {
    /// Softmax temperature; 0 means greedy (argmax). Negative or NaN is FS_ERROR_PARAM.
    pub temperature: f32,
    pub seed: u64,
    /// The decode step or position.
    pub offset: u64,
}

// C passes codes as integers: an out-of-range value must be refused, not transmuted.
pub(crate) fn backend_kind(code: u32) -> Result<BackendKind, Failure> {
    Ok(match code {
        0 => BackendKind::Auto,
        1 => BackendKind::Cpu,
        2 => BackendKind::CpuReference,
        3 => BackendKind::Cuda,
        4 => BackendKind::Wgpu,
        _ => return Err(Failure::new(fs_status::FS_ERROR_PARAM, format!("unknown backend code {code}"))),
    })
}

pub(crate) fn dtype(code: u32) -> Result<DType, Failure> {
    Ok(match code {
        0 => DType::Bf16,
        1 => DType::F16,
        2 => DType::F32,
        _ => return Err(Failure::new(fs_status::FS_ERROR_PARAM, format!("unknown dtype code {code}"))),
    })
}

pub(crate) fn row_status(s: RowStatus) -> u8 {
    (match s {
        RowStatus::Ok => fs_row_status::FS_ROW_OK,
        RowStatus::AllMasked => fs_row_status::FS_ROW_ALL_MASKED,
        RowStatus::NanLogits => fs_row_status::FS_ROW_NAN_LOGITS,
    }) as u8
}

impl From<fs_row_params> for RowParams {
    fn from(p: fs_row_params) -> Self {
        RowParams::new(p.temperature, p.seed, p.offset)
    }
}

/// The `fs_feature` bits of a feature set.
pub(crate) fn feature_bits(features: Features) -> u32 {
    let bit = |f: Feature| {
        (match f {
            Feature::Constraints => fs_feature::FS_FEATURE_CONSTRAINTS,
            Feature::Logprobs => fs_feature::FS_FEATURE_LOGPROBS,
            Feature::Truncation => fs_feature::FS_FEATURE_TRUNCATION,
            Feature::TopLogprobs => fs_feature::FS_FEATURE_TOP_LOGPROBS,
        }) as u32
    };
    Feature::ALL.into_iter().filter(|&f| features.contains(f)).map(bit).fold(0, |bits, b| bits | b)
}

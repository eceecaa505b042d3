//! The CUDA C++ kernel source, its entry points, and NVRTC compilation.

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use flashsampling_core::{DType, Error, Result};

/// The kernels (crates/cuda/kernels/sample.cu), compiled at run time by NVRTC.
pub const SOURCE: &str = include_str!("../kernels/sample.cu");

/// Architectures every kernel variant must compile for (checked in CI without a GPU).
pub const CI_ARCHS: [&str; 3] = ["sm_80", "sm_90a", "sm_100a"];

fn dtype_tag(d: DType) -> &'static str {
    match d {
        DType::Bf16 => "Bf16",
        DType::F16 => "F16",
        DType::F32 => "F32",
    }
}

/// Entry point of the fused kernel for weights `w` and hidden states `h`.
pub fn fused_name(w: DType, h: DType) -> String {
    format!("fused_{}_{}", dtype_tag(w), dtype_tag(h))
}

/// Element type of materialised logits the unfused path samples from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsDType {
    F32,
    Bf16,
}

/// Entry point of the sampling-from-logits kernel.
pub fn logits_name(d: LogitsDType) -> &'static str {
    match d {
        LogitsDType::F32 => "logits_f32",
        LogitsDType::Bf16 => "logits_bf16",
    }
}

/// Every entry point in [`SOURCE`].
pub fn entry_points() -> Vec<String> {
    let all = [DType::Bf16, DType::F16, DType::F32];
    let mut names: Vec<String> = all.iter().flat_map(|&w| all.iter().map(move |&h| fused_name(w, h))).collect();
    names.extend([LogitsDType::F32, LogitsDType::Bf16].map(|d| logits_name(d).to_string()));
    names
}

/// Compiles [`SOURCE`] for `arch` (e.g. `sm_90a`). Precise math: no fast-math, no FMA contraction
/// of the score (the kernels use explicitly rounded mul/add where it matters).
pub fn compile(arch: &str) -> Result<Ptx> {
    let opts = CompileOptions {
        use_fast_math: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()],
        name: Some("sample.cu".into()),
        ..Default::default()
    };
    compile_ptx_with_opts(SOURCE, opts).map_err(|e| Error::Device {
        backend: crate::NAME.into(),
        what: format!("NVRTC failed to compile the kernels for {arch}: {e}"),
    })
}

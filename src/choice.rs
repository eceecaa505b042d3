//! Run-time backend choice.

use flashsampling_core::cpu::{CpuBackend, ReferenceBackend};
use flashsampling_core::{Backend, Error, Result};

/// The environment variable that overrides [`BackendKind::Auto`]: `cpu`, `cpu-reference`, `cuda`,
/// `wgpu` or `auto`. An explicit kind given in code is never overridden.
pub const BACKEND_ENV: &str = "FLASHSAMPLING_BACKEND";

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// [`BACKEND_ENV`] if set; otherwise CUDA, then wgpu, then the CPU, the first that opens.
    Auto,
    /// The fast multi-threaded CPU backend: runs anywhere.
    Cpu,
    /// The plain reference sampler: slow, for checking the others.
    CpuReference,
    Cuda,
    Wgpu,
}

impl BackendKind {
    /// The concrete kinds, in the order `Auto` tries them, then the reference.
    pub const CONCRETE: [BackendKind; 4] =
        [BackendKind::Cuda, BackendKind::Wgpu, BackendKind::Cpu, BackendKind::CpuReference];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::CpuReference => "cpu-reference",
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [BackendKind::Auto, BackendKind::Cpu, BackendKind::CpuReference, BackendKind::Cuda, BackendKind::Wgpu]
            .into_iter()
            .find(|k| k.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| Error::Param {
                row: None,
                what: format!("unknown backend {s:?}: auto, cpu, cpu-reference, cuda or wgpu"),
            })
    }
}

/// Opens a backend. `Auto` honours [`BACKEND_ENV`], then probes CUDA, wgpu and the CPU in turn.
pub fn open(kind: BackendKind) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Auto => match std::env::var(BACKEND_ENV) {
            Ok(value) => match value.parse()? {
                BackendKind::Auto => probe_first(),
                chosen => open(chosen),
            },
            Err(_) => probe_first(),
        },
        BackendKind::Cpu => Ok(Box::new(CpuBackend::new())),
        BackendKind::CpuReference => Ok(Box::new(ReferenceBackend)),
        BackendKind::Cuda => open_cuda(),
        BackendKind::Wgpu => open_wgpu(),
    }
}

fn probe_first() -> Result<Box<dyn Backend>> {
    open_cuda().or_else(|_| open_wgpu()).or_else(|_| open(BackendKind::Cpu))
}

/// Tries every concrete backend: what `flashsampling info` reports.
pub fn probe() -> Vec<(BackendKind, Result<Box<dyn Backend>>)> {
    BackendKind::CONCRETE.into_iter().map(|k| (k, open(k))).collect()
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Box<dyn Backend>> {
    flashsampling_cuda::open(0)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Box<dyn Backend>> {
    Err(Error::Unavailable { backend: "cuda".into(), reason: "built without the `cuda` feature".into() })
}

#[cfg(feature = "wgpu")]
fn open_wgpu() -> Result<Box<dyn Backend>> {
    flashsampling_wgpu::open()
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> Result<Box<dyn Backend>> {
    Err(Error::Unavailable { backend: "wgpu".into(), reason: "built without the `wgpu` feature".into() })
}

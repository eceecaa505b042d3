//! The CUDA backend (DESIGN.md §4): cudarc with dynamic loading, so it builds without a CUDA
//! toolkit and reports a missing driver, NVRTC or GPU as [`Error::Unavailable`], never a panic.
//!
//! Kernels (`kernels/*.cu`: `fused_mma.cu` on tensor cores for bf16 and f16, up to 128 rows per
//! pass, and on sm_90a `fused_wide.cu` for plain passes of up to 256; `fused_simt.cu` on CUDA cores
//! for f32 and mixed dtypes; `logits.cu` for the unfused path) are compiled by NVRTC for
//! the device's architecture once per [`CudaBackend`] (one context). Two ways in:
//! - the [`Backend`] trait, with LM heads uploaded once by [`Backend::load_lm_head`];
//! - raw device pointers and the caller's stream: [`CudaBackend::sample_raw`] (fused LM head +
//!   sampling) and [`CudaBackend::sample_logits_raw`] (sampling from `[B, V]` logits). They
//!   allocate nothing, copy nothing, never synchronise the host, and zero then fill the caller's
//!   `out` buffer on the caller's stream. Per-row parameters are a device array of [`RowArgs`].

mod arena;
mod backend;
pub mod bench;
pub mod constraints;
mod driver;
pub mod kernels;
pub mod launch;
mod ranking;
mod staging;

pub use backend::{CudaBackend, DeviceCall, DeviceHead, DeviceUses};
pub use launch::{DeviceLists, Extras, FusedArgs, LogitsArgs, RowArgs};

use flashsampling_core::{Backend, Error, Result};

/// The backend's name.
pub const NAME: &str = "cuda";

/// Opens the CUDA backend on device `ordinal`.
pub fn open(ordinal: usize) -> Result<Box<dyn Backend>> {
    let opened = std::panic::catch_unwind(|| CudaBackend::new(ordinal));
    match opened {
        Ok(r) => Ok(Box::new(r?)),
        Err(_) => {
            Err(Error::Unavailable { backend: NAME.into(), reason: "the CUDA driver panicked while opening".into() })
        }
    }
}

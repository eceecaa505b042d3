//! The WGSL (wgpu) backend. Not implemented in this build yet (issue 4): [`open`] says so.

use flashsampling_core::{Backend, Error, Result};

/// Opens the wgpu backend on the adapter the environment selects.
pub fn open() -> Result<Box<dyn Backend>> {
    Err(Error::Unavailable {
        backend: "wgpu".into(),
        reason: "the WGSL backend is not implemented in this build yet".into(),
    })
}

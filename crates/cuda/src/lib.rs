//! The CUDA backend. Not implemented in this build yet (issue 3): [`open`] says so.

use flashsampling_core::{Backend, Error, Result};

/// Opens the CUDA backend on device `ordinal`.
pub fn open(ordinal: usize) -> Result<Box<dyn Backend>> {
    Err(Error::Unavailable {
        backend: "cuda".into(),
        reason: format!("the CUDA backend is not implemented in this build yet (device {ordinal} not probed)"),
    })
}

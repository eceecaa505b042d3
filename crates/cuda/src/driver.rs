//! Finding the driver and NVRTC before the first cudarc call (cudarc panics when a library is
//! missing), and mapping driver errors to the core's error type.

use flashsampling_core::Error;

/// Whether the CUDA driver library (libcuda) can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the library by its candidate names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC (libnvrtc, CUDA 13) can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: as above.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

pub fn unavailable(reason: impl Into<String>) -> Error {
    Error::Unavailable { backend: crate::NAME.into(), reason: reason.into() }
}

pub fn device_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device { backend: crate::NAME.into(), what: format!("{what}: {e}") }
}

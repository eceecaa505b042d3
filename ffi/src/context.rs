//! The context: one opened backend.

use std::any::Any;
use std::ffi::{c_char, CString};

use flashsampling::cuda::CudaBackend;
use flashsampling::Backend;

use crate::error::{boundary, fs_status, non_null, Failure};
use crate::handles::{self, Kind};
use crate::types::{backend_kind, feature_bits};

/// An opened backend. Create with `flashsampling_context_create`, free with
/// `flashsampling_context_destroy`. Safe to share between threads for concurrent calls.
pub struct fs_context {
    pub(crate) backend: Box<dyn Backend>,
    name: CString,
}

/// Opens the backend `backend` (an `fs_backend` code) and writes a new context to `*out`.
///
/// With FS_BACKEND_AUTO the environment variable FLASHSAMPLING_BACKEND (cpu, cpu-reference, cuda,
/// wgpu, auto) chooses; otherwise the first of CUDA, wgpu and the CPU that opens. An explicit code
/// fails with FS_ERROR_UNAVAILABLE when that backend is not in this build or on this machine.
/// On failure `*out` is set to NULL.
///
/// # Safety
/// `out` must be NULL or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn flashsampling_context_create(backend: u32, out: *mut *mut fs_context) -> fs_status {
    boundary(|| {
        non_null(out, "out")?;
        unsafe { *out = std::ptr::null_mut() };
        let backend = flashsampling::open(backend_kind(backend)?)?;
        let name = CString::new(backend.name()).unwrap_or_default();
        unsafe { *out = handles::register(fs_context { backend, name }, Kind::Context) };
        Ok(())
    })
}

/// Frees a context. Heads loaded through it stay valid and must be destroyed separately.
/// Destroying a context twice returns FS_ERROR_INVALID_HANDLE (best effort: the check cannot
/// tell a stale pointer from a new context that reuses its address).
///
/// # Safety
/// `ctx` must be NULL or a pointer from `flashsampling_context_create`; no other thread may be
/// using it.
#[no_mangle]
pub unsafe extern "C" fn flashsampling_context_destroy(ctx: *mut fs_context) -> fs_status {
    boundary(|| unsafe { handles::destroy(ctx, Kind::Context, "ctx") })
}

/// The name of the context's backend ("cpu", "cpu-reference", "cuda", "wgpu"), or NULL for an
/// invalid handle. The string lives as long as the context.
///
/// # Safety
/// `ctx` must be NULL or a pointer from `flashsampling_context_create`.
#[no_mangle]
pub unsafe extern "C" fn flashsampling_context_backend(ctx: *const fs_context) -> *const c_char {
    let mut name = std::ptr::null();
    boundary(|| {
        name = unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?.name.as_ptr();
        Ok(())
    });
    name
}

/// Writes to `*out` the `fs_feature` bits of the optional features the context's backend offers
/// through `flashsampling_sample_ex` (0 for a backend that offers none).
///
/// # Safety
/// `ctx` must be NULL or a pointer from `flashsampling_context_create`; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn flashsampling_context_features(ctx: *const fs_context, out: *mut u32) -> fs_status {
    boundary(|| {
        let ctx = unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?;
        non_null(out, "out")?;
        unsafe { *out = feature_bits(ctx.backend.features()) };
        Ok(())
    })
}

/// The context's CUDA backend, or FS_ERROR_UNSUPPORTED.
pub(crate) fn cuda_of(ctx: &fs_context) -> Result<&CudaBackend, Failure> {
    let any: &dyn Any = ctx.backend.as_ref();
    any.downcast_ref::<CudaBackend>().ok_or_else(|| {
        Failure::new(
            fs_status::FS_ERROR_UNSUPPORTED,
            format!("device pointers need a CUDA context; this one is {}", ctx.backend.name()),
        )
    })
}

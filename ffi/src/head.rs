//! The LM head handle: weights loaded once by a context's backend.

use std::ffi::c_void;

use flashsampling::{LmHead, LmHeadRef, Tensor};

use crate::context::{cuda_of, fs_context};
use crate::error::{boundary, fs_status, non_null, Failure};
use crate::handles::{self, Kind};
use crate::types::dtype;

/// An LM head (or vocabulary shard) resident on a backend: a host copy for the CPU backends,
/// device memory for the GPU ones. Immutable once loaded; safe to share between threads.
pub struct fs_lm_head {
    pub(crate) head: LmHead,
}

/// Copies the host weights `W: [rows, dim]` (row-major, `weights_bytes` bytes of `dtype`) to the
/// context's backend and writes a new head to `*out`. The caller's buffer is not retained.
///
/// `vocab_size` 0 loads the whole vocabulary (`rows` tokens, `vocab_offset` must be 0); otherwise
/// the head is the shard of tokens `[vocab_offset, vocab_offset + rows)` of a vocabulary of
/// `vocab_size` tokens. `weights` must be aligned to the element size. On failure `*out` is NULL.
///
/// # Safety
/// `weights` must be NULL or readable for `weights_bytes` bytes; `out` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_lm_head_load(
    ctx: *const fs_context,
    weights: *const c_void,
    weights_bytes: usize,
    dtype_code: u32,
    dim: usize,
    vocab_offset: u32,
    vocab_size: u32,
    out: *mut *mut fs_lm_head,
) -> fs_status {
    let make = || {
        let ctx = unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?;
        non_null(weights, "weights")?;
        let bytes = unsafe { std::slice::from_raw_parts(weights.cast::<u8>(), weights_bytes) };
        let mut head = LmHeadRef::new(Tensor::from_bytes(bytes, dtype(dtype_code)?)?, dim)?;
        if vocab_size != 0 || vocab_offset != 0 {
            head = head.shard(vocab_offset, vocab_size)?;
        }
        Ok(ctx.backend.load_lm_head(head)?)
    };
    unsafe { new_head(out, make) }
}

/// Wraps weights already in the CUDA device memory of a CUDA context's device (the engine's own
/// LM head, no copy): `weights` is `[rows, dim]` of `dtype_code`, 16-byte aligned, `dim` a multiple
/// of 8. `vocab_size` 0 means the whole vocabulary (`rows` tokens, `vocab_offset` 0); otherwise
/// the head is the shard `[vocab_offset, vocab_offset + rows)` of `vocab_size` tokens.
/// The memory stays the caller's: it must outlive the head, and destroying the head never frees
/// it. FS_ERROR_UNSUPPORTED for a context that is not CUDA. On failure `*out` is NULL.
///
/// # Safety
/// `weights` must be a device pointer valid for `rows × dim` elements while the head is used;
/// `out` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_lm_head_borrow_cuda(
    ctx: *const fs_context,
    weights: *const c_void,
    dtype_code: u32,
    rows: usize,
    dim: usize,
    vocab_offset: u32,
    vocab_size: u32,
    out: *mut *mut fs_lm_head,
) -> fs_status {
    let make = || {
        let cuda = cuda_of(unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?)?;
        let vocab_size =
            if vocab_size == 0 && vocab_offset == 0 { u32::try_from(rows).unwrap_or(u32::MAX) } else { vocab_size };
        Ok(unsafe { cuda.borrow_lm_head(weights as u64, dtype(dtype_code)?, (rows, dim), (vocab_offset, vocab_size)) }?)
    };
    unsafe { new_head(out, make) }
}

/// Writes the head that `make` builds to `*out` as a new handle, or NULL on failure.
///
/// # Safety
/// `out` must be NULL or valid for one pointer write.
unsafe fn new_head(out: *mut *mut fs_lm_head, make: impl FnOnce() -> Result<LmHead, Failure>) -> fs_status {
    boundary(|| {
        non_null(out, "out")?;
        unsafe { *out = std::ptr::null_mut() };
        let head = make()?;
        unsafe { *out = handles::register(fs_lm_head { head }, Kind::LmHead) };
        Ok(())
    })
}

/// Frees a head, and its device memory when the library allocated it (never memory borrowed with
/// `flashsampling_lm_head_borrow_cuda`). Destroying twice returns FS_ERROR_INVALID_HANDLE (best
/// effort, as for contexts).
///
/// # Safety
/// `head` must be NULL or a pointer from `flashsampling_lm_head_load` or
/// `flashsampling_lm_head_borrow_cuda`, used by no call meanwhile.
#[no_mangle]
pub unsafe extern "C" fn flashsampling_lm_head_destroy(head: *mut fs_lm_head) -> fs_status {
    boundary(|| unsafe { handles::destroy(head, Kind::LmHead, "head") })
}

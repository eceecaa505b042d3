//! The sampling calls: host buffers (every backend) and CUDA device buffers.

use std::ffi::c_void;

use flashsampling::cuda::DeviceCall;
use flashsampling::{HiddenRef, Request, RowParams, Tensor};

use crate::context::{cuda_of, fs_context};
use crate::error::{boundary, fs_status, non_null, Failure};
use crate::handles::{self, Kind};
use crate::head::fs_lm_head;
use crate::types::{dtype, fs_row_params, row_status};

fn shape(msg: String) -> Failure {
    Failure::new(fs_status::FS_ERROR_SHAPE, msg)
}

/// A caller's typed buffer as a slice, after NULL, alignment and length checks.
unsafe fn slice<'a, T>(ptr: *const T, len: usize, expected: usize, name: &str) -> Result<&'a [T], Failure> {
    non_null(ptr, name)?;
    if !ptr.is_aligned() {
        return Err(shape(format!("{name} at {ptr:p} is not aligned to {} bytes", align_of::<T>())));
    }
    if len != expected {
        return Err(shape(format!("{name} holds {len} elements, expected {expected}")));
    }
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Draws `samples` tokens for each of the `batch` rows of the host hidden states
/// `H: [batch, head dim]` (`hidden_bytes` bytes of `dtype`, aligned to the element size).
///
/// Inputs: `rows[batch]` (`rows_len` must equal `batch`). Outputs, owned by the caller and
/// written only on FS_OK: `tokens[batch * samples]` (global token ids, row-major, `tokens_len`
/// must equal `batch * samples`) and `statuses[batch]` (`fs_row_status` codes, `statuses_len`
/// must equal `batch`). A row whose status is not FS_ROW_OK has tokens 0. Every input is checked
/// before any work; the call returns when the tokens are written.
///
/// # Safety
/// Each pointer must be NULL or valid for its stated length; the outputs must not overlap inputs.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_sample(
    ctx: *const fs_context,
    head: *const fs_lm_head,
    hidden: *const c_void,
    hidden_bytes: usize,
    dtype_code: u32,
    batch: usize,
    rows: *const fs_row_params,
    rows_len: usize,
    samples: u32,
    tokens: *mut u32,
    tokens_len: usize,
    statuses: *mut u8,
    statuses_len: usize,
) -> fs_status {
    boundary(|| {
        let ctx = unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?;
        let head = &unsafe { handles::borrow(head, Kind::LmHead, "head") }?.head;
        non_null(hidden, "hidden")?;
        let bytes = unsafe { std::slice::from_raw_parts(hidden.cast::<u8>(), hidden_bytes) };
        let hidden = HiddenRef::new(Tensor::from_bytes(bytes, dtype(dtype_code)?)?, head.dim)?;
        if hidden.batch != batch {
            return Err(shape(format!("hidden holds {} rows of dim {}, batch is {batch}", hidden.batch, head.dim)));
        }
        let params: Vec<RowParams> =
            unsafe { slice(rows, rows_len, batch, "rows") }?.iter().map(|&p| p.into()).collect();
        let outputs = batch.checked_mul(samples as usize).ok_or_else(|| shape("batch × samples overflows".into()))?;
        let tokens = unsafe { slice(tokens.cast_const(), tokens_len, outputs, "tokens") }?.as_ptr().cast_mut();
        let statuses = unsafe { slice(statuses.cast_const(), statuses_len, batch, "statuses") }?.as_ptr().cast_mut();

        let out = ctx.backend.sample(head, &Request::new(hidden, &params, samples))?;
        unsafe { std::slice::from_raw_parts_mut(tokens, outputs) }.copy_from_slice(&out.tokens);
        let statuses = unsafe { std::slice::from_raw_parts_mut(statuses, batch) };
        for (dst, &s) in statuses.iter_mut().zip(&out.status) {
            *dst = row_status(s);
        }
        Ok(())
    })
}

/// The CUDA path, for engines that keep everything on the GPU: `hidden`, `rows`, `workspace`,
/// `tokens` and `statuses` are device pointers of the context's device, `stream` is the caller's
/// `cudaStream_t` (NULL: the default stream). The call enqueues the fused kernel and a decode kernel
/// on `stream` and returns: it allocates nothing, copies nothing and does not synchronise, so it
/// can be captured in a CUDA graph. Read the outputs after synchronising with `stream`.
///
/// - `head`: loaded (`flashsampling_lm_head_load`) or borrowed (`flashsampling_lm_head_borrow_cuda`)
///   by a CUDA context.
/// - `hidden`: `[batch, head dim]` of `dtype_code`, 16-byte aligned.
/// - `rows`: `batch` `fs_row_params` in device memory (8-byte aligned). They cannot be checked
///   before the launch: a row whose temperature is negative, NaN, infinite or too small to invert
///   gets FS_ROW_INVALID_PARAMS and tokens 0.
/// - `workspace`: `batch * samples` `uint64_t` of scratch (the packed candidates), 8-byte aligned.
/// - `tokens`: `batch * samples` `uint32_t`, row-major; `statuses`: `batch` `fs_row_status` bytes.
///
/// Returns FS_ERROR_UNSUPPORTED for a context that is not CUDA; everything checkable on the host
/// (handles, NULL, alignment, dtype codes, sizes) is checked before anything is enqueued.
///
/// # Safety
/// Device pointers must be valid for their sizes until `stream` has run the call; `stream` must be
/// NULL or a live stream of the context's device. Device memory is never dereferenced on the host.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_sample_cuda(
    ctx: *const fs_context,
    head: *const fs_lm_head,
    hidden: *const c_void,
    dtype_code: u32,
    batch: usize,
    rows: *const fs_row_params,
    samples: u32,
    workspace: *mut u64,
    tokens: *mut u32,
    statuses: *mut u8,
    stream: *mut c_void,
) -> fs_status {
    boundary(|| {
        let cuda = cuda_of(unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?)?;
        let head = &unsafe { handles::borrow(head, Kind::LmHead, "head") }?.head;
        let batch = u32::try_from(batch).map_err(|_| shape(format!("batch {batch} exceeds u32")))?;
        let call = DeviceCall {
            hidden: hidden as u64,
            hidden_dtype: dtype(dtype_code)?,
            batch,
            rows: rows as u64,
            samples,
            workspace: workspace as u64,
            tokens: tokens as u64,
            statuses: statuses as u64,
        };
        unsafe { cuda.sample_head_raw(head, &call, stream.cast()) }?;
        Ok(())
    })
}

//! The sampling calls: host buffers (every backend) and CUDA device buffers.

use std::ffi::c_void;

use flashsampling::cuda::{CudaBackend, DeviceCall, DeviceLists, DeviceUses};
use flashsampling::{HiddenRef, Request, RowParams, SampleOutput, Tensor};

use crate::buffers::{shape, slice, Output};
use crate::context::{cuda_of, fs_context};
use crate::error::{boundary, fs_status, non_null, Failure};
use crate::handles::{self, Kind};
use crate::head::fs_lm_head;
use crate::options::{fs_penalty_params, fs_sample_options, fs_truncation, Options};
use crate::types::{dtype, fs_row_params, row_status};

/// Draws `samples` tokens for each of the `batch` rows of the host hidden states
/// `H: [batch, head dim]` (`hidden_bytes` bytes of `dtype`, aligned to the element size).
///
/// Inputs: `rows[batch]` (`rows_len` must equal `batch`). Outputs, owned by the caller and
/// written only on FS_OK: `tokens[batch * samples]` (global token ids, row-major, `tokens_len`
/// must equal `batch * samples`) and `statuses[batch]` (`fs_row_status` codes, `statuses_len`
/// must equal `batch`). A row whose status is not FS_ROW_OK has tokens 0. Every input is checked
/// before any work; the call returns when the tokens are written.
/// `flashsampling_sample_ex` adds constraints, truncation and logprobs.
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
    let outputs = fs_sample_outputs { tokens, tokens_len, statuses, statuses_len, ..fs_sample_outputs::NONE };
    let options = std::ptr::null();
    unsafe {
        flashsampling_sample_ex(
            ctx,
            head,
            hidden,
            hidden_bytes,
            dtype_code,
            batch,
            rows,
            rows_len,
            samples,
            options,
            &outputs,
        )
    }
}

/// The output buffers of `flashsampling_sample_ex`, owned by the caller; lengths are in elements
/// and must equal the sizes given. Only `tokens` and `statuses` are required: a NULL optional
/// buffer is an output not asked for, and asking for one costs work.
///
/// Logprobs and log-normalisers are of the distribution each row samples from: constraints,
/// temperature and truncation applied, renormalised over the survivors (greedy rows: the
/// untempered distribution), so `logprob(t) = y_t - logZ` with `y = processed logit / T`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_sample_outputs {
    /// `batch * samples` token ids, row-major (`tokens[b * samples + s]`); 0 for a bad row.
    pub tokens: *mut u32,
    pub tokens_len: usize,
    /// `batch` `fs_row_status` codes.
    pub statuses: *mut u8,
    pub statuses_len: usize,
    /// `batch * samples` logprobs of the sampled tokens (NaN for a bad row), or NULL.
    pub logprobs: *mut f32,
    pub logprobs_len: usize,
    /// `batch` log-normalisers `logZ`, in units of `y`, or NULL.
    pub log_normalizer: *mut f32,
    pub log_normalizer_len: usize,
    /// N ≤ 20 most likely tokens per row to report; 0: none (`top_tokens` and `top_logprobs`
    /// are then ignored). Both buffers hold `batch * top_n`, most likely first, ties by lower
    /// token id. A row with fewer than N tokens of positive probability is padded with token 0
    /// and logprob -INFINITY; a bad row has tokens 0 and logprobs NaN.
    pub top_n: u32,
    pub top_tokens: *mut u32,
    pub top_tokens_len: usize,
    pub top_logprobs: *mut f32,
    pub top_logprobs_len: usize,
}

/// As `flashsampling_sample`, with the optional per-row inputs of `options` (NULL: none) and the
/// buffers of `outputs` (required). Outputs are written only on FS_OK.
///
/// Refusals, all before any work and with nothing written: FS_ERROR_NULL_POINTER (a required
/// pointer, or a CSR's `tokens` / `values` with a non-zero `len`), FS_ERROR_SHAPE (a length that
/// does not match `batch`, `samples`, `top_n` or the vocabulary; CSR offsets that do not start at
/// 0, decrease, or do not end at `len`), FS_ERROR_PARAM (a token outside the vocabulary, a token
/// twice in one row's list, non-finite bias or penalties, repetition ≤ 0, top_k > 1024, top_p
/// outside (0, 1], min_p outside [0, 1], top_n > 20, truncation or top_n on a vocabulary shard),
/// FS_ERROR_UNSUPPORTED (a feature the backend lacks: `flashsampling_context_features`).
///
/// # Safety
/// Each pointer, including those inside `options` and `outputs`, must be NULL or valid for its
/// stated length; outputs must not overlap inputs or each other.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_sample_ex(
    ctx: *const fs_context,
    head: *const fs_lm_head,
    hidden: *const c_void,
    hidden_bytes: usize,
    dtype_code: u32,
    batch: usize,
    rows: *const fs_row_params,
    rows_len: usize,
    samples: u32,
    options: *const fs_sample_options,
    outputs: *const fs_sample_outputs,
) -> fs_status {
    boundary(|| {
        let ctx = unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?;
        let head = &unsafe { handles::borrow(head, Kind::LmHead, "head") }?.head;
        let hidden = unsafe { hidden_states(hidden, hidden_bytes, dtype_code, head.dim, batch) }?;
        let params: Vec<RowParams> =
            unsafe { slice(rows, rows_len, batch, "rows") }?.iter().map(|&p| p.into()).collect();
        let options = unsafe { Options::read(options, batch, head.vocab_size) }?;
        non_null(outputs, "outputs")?;
        let outputs = unsafe { Outputs::read(&*outputs, batch, samples) }?;

        let constraints = options.constraints(batch);
        let mut req = outputs.ask(Request::new(hidden, &params, samples));
        if let Some(c) = &constraints {
            req = req.with_constraints(c);
        }
        if let Some(t) = &options.truncation {
            req = req.with_truncation(t);
        }
        outputs.write(ctx.backend.sample(head, &req)?);
        Ok(())
    })
}

/// The host hidden states `[batch, dim]`.
unsafe fn hidden_states<'a>(
    hidden: *const c_void,
    bytes: usize,
    dtype_code: u32,
    dim: usize,
    batch: usize,
) -> Result<HiddenRef<'a>, Failure> {
    non_null(hidden, "hidden")?;
    let bytes = unsafe { std::slice::from_raw_parts(hidden.cast::<u8>(), bytes) };
    let hidden = HiddenRef::new(Tensor::from_bytes(bytes, dtype(dtype_code)?)?, dim)?;
    if hidden.batch != batch {
        return Err(shape(format!("hidden holds {} rows of dim {dim}, batch is {batch}", hidden.batch)));
    }
    Ok(hidden)
}

/// The checked output buffers of one call.
struct Outputs {
    tokens: Output<u32>,
    statuses: Output<u8>,
    logprobs: Option<Output<f32>>,
    log_normalizer: Option<Output<f32>>,
    top_n: u32,
    top: Option<(Output<u32>, Output<f32>)>,
}

impl fs_sample_outputs {
    const NONE: fs_sample_outputs = fs_sample_outputs {
        tokens: std::ptr::null_mut(),
        tokens_len: 0,
        statuses: std::ptr::null_mut(),
        statuses_len: 0,
        logprobs: std::ptr::null_mut(),
        logprobs_len: 0,
        log_normalizer: std::ptr::null_mut(),
        log_normalizer_len: 0,
        top_n: 0,
        top_tokens: std::ptr::null_mut(),
        top_tokens_len: 0,
        top_logprobs: std::ptr::null_mut(),
        top_logprobs_len: 0,
    };
}

impl Outputs {
    /// # Safety
    /// The pointers of `o` must be NULL or valid for their stated lengths.
    unsafe fn read(o: &fs_sample_outputs, batch: usize, samples: u32) -> Result<Self, Failure> {
        let draws = batch.checked_mul(samples as usize).ok_or_else(|| shape("batch × samples overflows".into()))?;
        let top_len = batch.checked_mul(o.top_n as usize).ok_or_else(|| shape("batch × top_n overflows".into()))?;
        let top = match o.top_n {
            0 => None,
            _ => Some(unsafe {
                (
                    Output::new(o.top_tokens, o.top_tokens_len, top_len, "top_tokens")?,
                    Output::new(o.top_logprobs, o.top_logprobs_len, top_len, "top_logprobs")?,
                )
            }),
        };
        Ok(Outputs {
            tokens: unsafe { Output::new(o.tokens, o.tokens_len, draws, "tokens") }?,
            statuses: unsafe { Output::new(o.statuses, o.statuses_len, batch, "statuses") }?,
            logprobs: unsafe { Output::optional(o.logprobs, o.logprobs_len, draws, "logprobs") }?,
            log_normalizer: unsafe {
                Output::optional(o.log_normalizer, o.log_normalizer_len, batch, "log_normalizer")
            }?,
            top_n: o.top_n,
            top,
        })
    }

    /// `req` asking for the optional outputs that have a buffer.
    fn ask<'a>(&self, req: Request<'a>) -> Request<'a> {
        let req = if self.logprobs.is_some() || self.log_normalizer.is_some() { req.with_logprobs() } else { req };
        if self.top.is_some() {
            req.with_top_logprobs(self.top_n)
        } else {
            req
        }
    }

    fn write(self, out: SampleOutput) {
        // The core fills every output the request asked for (`ask`); a miss is a bug, caught as a
        // panic before anything is written.
        let asked = "an output asked for is missing";
        let logprobs = self.logprobs.map(|dst| (dst, out.logprobs.as_deref().expect(asked)));
        let log_normalizer = self.log_normalizer.map(|dst| (dst, out.log_normalizer.as_deref().expect(asked)));
        let top = self.top.map(|dst| (dst, out.top_logprobs.as_ref().expect(asked)));
        self.tokens.write(&out.tokens);
        let statuses: Vec<u8> = out.status.iter().map(|&s| row_status(s)).collect();
        self.statuses.write(&statuses);
        for (dst, src) in logprobs.into_iter().chain(log_normalizer) {
            dst.write(src);
        }
        if let Some(((tokens, logprobs), src)) = top {
            tokens.write(&src.tokens);
            logprobs.write(&src.logprobs);
        }
    }
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
        let (cuda, head) = cuda_head(ctx, head)?;
        let call = DeviceCall {
            workspace_bytes: batch.saturating_mul(samples as usize).saturating_mul(8),
            tokens: tokens as u64,
            statuses: statuses as u64,
            ..device_call(hidden, dtype_code, batch, rows, samples, workspace.cast())?
        };
        unsafe { cuda.sample_head_raw(head, &call, stream.cast()) }?;
        Ok(())
    })
}

/// The device buffers `flashsampling_sample_cuda_ex` writes: device pointers of the context's
/// device.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_cuda_outputs {
    /// `batch * samples` token ids, row-major; 0 for a bad row. Required.
    pub tokens: *mut u32,
    /// `batch` `fs_row_status` bytes. Required.
    pub statuses: *mut u8,
    /// `batch * samples` logprobs of the sampled tokens (NaN for a bad row), 4-byte aligned, or
    /// NULL.
    pub logprobs: *mut f32,
    /// `batch` log-normalisers `logZ`, in units of `y`, 4-byte aligned, or NULL.
    pub log_normalizer: *mut f32,
    /// N ≤ 20 most likely tokens per row to report, as `fs_sample_outputs.top_n`; 0: none
    /// (`top_tokens` and `top_logprobs` are then ignored). Both buffers hold `batch * top_n`,
    /// row-major, 4-byte aligned, most likely first, ties by lower token id; the logprobs are of the
    /// distribution each row samples from (a truncated row's list holds only its survivors). A row
    /// with fewer than N tokens of positive probability is padded with token 0 and logprob
    /// -INFINITY; a bad row has tokens 0 and logprobs NaN. Ranks every row on the device: the head
    /// must be the whole vocabulary, the batch at most 65,535 rows, and the workspace as large as
    /// with truncation (`flashsampling_cuda_workspace_bytes` with this `top_n`).
    pub top_n: u32,
    pub top_tokens: *mut u32,
    pub top_logprobs: *mut f32,
}

/// Optional device inputs of `flashsampling_sample_cuda_ex`. Zero-initialise it (`{0}`) and set
/// what you use: a NULL pointer means "not used". Device pointers of the context's device.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fs_cuda_options {
    /// Allowed tokens: `batch * ceil(V / 32)` words, row-major, 4-byte aligned, where V is the
    /// head's whole vocabulary (`vocab_size`, shards included) — the layout of
    /// `fs_sample_options.mask`, which grammar engines produce on the GPU. A row that allows
    /// nothing gets FS_ROW_ALL_MASKED.
    pub mask: *const u32,
    /// Per-row token lists (CSR): row `b`'s entries are `adjust_offsets[b] .. adjust_offsets[b +
    /// 1]` (`batch + 1` values, never decreasing, at most `adjust_len`) of `adjust_tokens` (global
    /// token ids, increasing within a row). NULL: no lists. Device memory cannot be checked before
    /// the launch: a row whose list breaks these rules, or whose bias or penalties are not finite
    /// (repetition ≤ 0), gets FS_ROW_INVALID_PARAMS, and every row does when the offsets decrease
    /// or pass `adjust_len`.
    pub adjust_offsets: *const u32,
    pub adjust_tokens: *const u32,
    /// Times each listed token was generated, for the penalties; NULL: none.
    pub adjust_counts: *const u32,
    /// Added to each listed token's logit; NULL: none.
    pub adjust_bias: *const f32,
    /// Entries of the lists, a host value (`adjust_offsets[batch]`).
    pub adjust_len: usize,
    /// `batch` penalty coefficients, applied to the listed tokens with a count; NULL: `{1, 0, 0}`.
    /// They act as in `flashsampling_sample_ex` (penalties, then bias, then the mask).
    pub penalties: *const fs_penalty_params,
    /// `batch` rows of truncation in device memory (4-byte aligned), as `fs_sample_options.truncation`
    /// (top-k, then top-p, then min-p; `{0, 1.0f, 0.0f}`: none); NULL: none. Finished on the
    /// device: a row whose 1024 most likely tokens cannot certify its cut-off (top-p or min-p
    /// without top-k reaching past them, or a non-finite maximum) is finished from its whole row.
    /// The head must be the whole vocabulary (no shard), and the batch at most 65,535 rows. Needs a
    /// larger workspace (`flashsampling_cuda_workspace_bytes`: the scaled logits of every row,
    /// `batch × rows × 4` bytes, and the selection's buffers). A row whose values leave their
    /// domains gets FS_ROW_INVALID_PARAMS.
    pub truncation: *const fs_truncation,
}

/// The device lists of `options`, or `None`.
fn device_lists(options: &fs_cuda_options) -> Result<Option<DeviceLists>, Failure> {
    if options.adjust_offsets.is_null() {
        return Ok(None);
    }
    let len = u32::try_from(options.adjust_len)
        .map_err(|_| shape(format!("adjust_len {} exceeds u32", options.adjust_len)))?;
    Ok(Some(DeviceLists {
        offsets: options.adjust_offsets as u64,
        tokens: options.adjust_tokens as u64,
        counts: options.adjust_counts as u64,
        bias: options.adjust_bias as u64,
        penalties: options.penalties as u64,
        len,
    }))
}

/// What a call with `options` (NULL: none), `logprobs` and top-N lists of `top_n` tokens uses.
unsafe fn device_uses(options: *const fs_cuda_options, logprobs: bool, top_n: u32) -> Result<DeviceUses, Failure> {
    let Some(o) = (unsafe { options.as_ref() }) else {
        return Ok(DeviceUses { logprobs, top_n, ..Default::default() });
    };
    Ok(DeviceUses {
        mask: !o.mask.is_null(),
        lists: device_lists(o)?.map(|l| l.len),
        logprobs,
        truncation: !o.truncation.is_null(),
        top_n,
    })
}

/// Writes into `*bytes` the device workspace `flashsampling_sample_cuda_ex` needs for `batch` rows
/// of `samples` samples on `head` with hidden states of `dtype_code`, the inputs of `options`
/// (NULL: none; its device pointers are only compared with NULL), with `logprobs` logprobs or
/// log-normalisers, and top-N lists of `top_n` tokens (`fs_cuda_outputs.top_n`; 0: none).
/// FS_ERROR_UNSUPPORTED for a context that is not CUDA, FS_ERROR_PARAM for `top_n` > 20.
///
/// # Safety
/// `options` must be NULL or valid to read; `bytes` NULL or valid for one write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_cuda_workspace_bytes(
    ctx: *const fs_context,
    head: *const fs_lm_head,
    dtype_code: u32,
    batch: usize,
    samples: u32,
    options: *const fs_cuda_options,
    logprobs: bool,
    top_n: u32,
    bytes: *mut usize,
) -> fs_status {
    boundary(|| {
        let (cuda, head) = cuda_head(ctx, head)?;
        let batch = u32::try_from(batch).map_err(|_| shape(format!("batch {batch} exceeds u32")))?;
        let uses = unsafe { device_uses(options, logprobs, top_n) }?;
        let needed = cuda.device_workspace_bytes(head, dtype(dtype_code)?, batch, samples, uses)?;
        non_null(bytes, "bytes")?;
        unsafe { *bytes = needed };
        Ok(())
    })
}

/// As `flashsampling_sample_cuda`, with the inputs of `options` (NULL: none), a workspace of
/// `workspace_bytes` bytes (at least what `flashsampling_cuda_workspace_bytes` says, 8-byte
/// aligned) and the buffers of `outputs`: besides tokens and statuses, the logprobs of the sampled
/// tokens, each row's log-normaliser and its top-N tokens with their logprobs when asked for,
/// computed on the device as `flashsampling_sample_ex` computes them (of the distribution each row
/// samples from: constraints and truncation applied). Everything is enqueued on `stream`: no
/// allocation, copy or synchronisation.
///
/// Refusals, before anything is enqueued: FS_ERROR_SHAPE (a NULL or misaligned device buffer,
/// including `top_tokens` or `top_logprobs` when `top_n` > 0; a workspace too small for the call),
/// FS_ERROR_PARAM (`top_n` > 20; truncation or top-N on a vocabulary shard), FS_ERROR_UNSUPPORTED
/// (truncation or top-N over more than 65,535 rows).
///
/// # Safety
/// As for `flashsampling_sample_cuda`; `options` must be NULL or valid to read, `outputs` valid to
/// read, and their device pointers valid for their sizes until `stream` has run the call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flashsampling_sample_cuda_ex(
    ctx: *const fs_context,
    head: *const fs_lm_head,
    hidden: *const c_void,
    dtype_code: u32,
    batch: usize,
    rows: *const fs_row_params,
    samples: u32,
    options: *const fs_cuda_options,
    workspace: *mut c_void,
    workspace_bytes: usize,
    outputs: *const fs_cuda_outputs,
    stream: *mut c_void,
) -> fs_status {
    boundary(|| {
        let (cuda, head) = cuda_head(ctx, head)?;
        non_null(outputs, "outputs")?;
        let out = unsafe { *outputs };
        let options = unsafe { options.as_ref() };
        let call = DeviceCall {
            mask: options.map_or(0, |o| o.mask as u64),
            lists: options.map(device_lists).transpose()?.flatten(),
            truncation: options.map_or(0, |o| o.truncation as u64),
            workspace_bytes,
            tokens: out.tokens as u64,
            statuses: out.statuses as u64,
            logprobs: out.logprobs as u64,
            log_normalizer: out.log_normalizer as u64,
            top_n: out.top_n,
            top_tokens: out.top_tokens as u64,
            top_logprobs: out.top_logprobs as u64,
            ..device_call(hidden, dtype_code, batch, rows, samples, workspace)?
        };
        unsafe { cuda.sample_head_raw(head, &call, stream.cast()) }?;
        Ok(())
    })
}

/// The context's CUDA backend and the head's `LmHead`.
unsafe fn cuda_head<'a>(
    ctx: *const fs_context,
    head: *const fs_lm_head,
) -> Result<(&'a CudaBackend, &'a flashsampling::LmHead), Failure> {
    let cuda = cuda_of(unsafe { handles::borrow(ctx, Kind::Context, "ctx") }?)?;
    let head = &unsafe { handles::borrow(head, Kind::LmHead, "head") }?.head;
    Ok((cuda, head))
}

/// The inputs of a device call; its outputs left empty.
fn device_call(
    hidden: *const c_void,
    dtype_code: u32,
    batch: usize,
    rows: *const fs_row_params,
    samples: u32,
    workspace: *mut c_void,
) -> Result<DeviceCall, Failure> {
    Ok(DeviceCall {
        hidden: hidden as u64,
        hidden_dtype: dtype(dtype_code)?,
        batch: u32::try_from(batch).map_err(|_| shape(format!("batch {batch} exceeds u32")))?,
        rows: rows as u64,
        samples,
        workspace: workspace as u64,
        workspace_bytes: 0,
        tokens: 0,
        statuses: 0,
        logprobs: 0,
        log_normalizer: 0,
        mask: 0,
        lists: None,
        truncation: 0,
        top_n: 0,
        top_tokens: 0,
        top_logprobs: 0,
    })
}

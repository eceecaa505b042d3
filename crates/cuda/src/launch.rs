//! Kernel launches on raw device pointers and a caller's stream: no allocation, no copy, no host
//! synchronisation. The safe [`crate::CudaBackend`] and the benchmark build on these.

use std::ffi::c_void;

use cudarc::driver::{result, sys, CudaFunction};
use flashsampling_core::{DType, Error, Result, RowParams, Truncation};

use crate::driver::device_error;
use crate::kernels::{LogitsDType, SELECT_CHUNK_THREADS, SELECT_LISTS_THREADS, SELECT_THREADS};

/// Per-row parameters as the kernels read them from device memory: 24 bytes, `#[repr(C)]`, one per
/// batch row; the layout of `fs_row_params` in flashsampling.h, so C callers hand theirs over as
/// they are. The kernels compute `1 / T` once per row (temperature 0: greedy).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowArgs {
    pub temperature: f32,
    pub reserved: u32,
    pub seed: u64,
    pub offset: u64,
}

impl RowArgs {
    pub fn new(temperature: f32, seed: u64, offset: u64) -> Self {
        RowArgs { temperature, reserved: 0, seed, offset }
    }

    pub fn from_params(p: &RowParams) -> Self {
        RowArgs::new(p.temperature, p.seed, p.offset)
    }

    /// The little-endian bytes of `rows`, ready for upload.
    pub fn to_bytes(rows: &[RowArgs]) -> Vec<u8> {
        let mut v = Vec::with_capacity(std::mem::size_of_val(rows));
        for r in rows {
            v.extend_from_slice(&r.temperature.to_le_bytes());
            v.extend_from_slice(&r.reserved.to_le_bytes());
            v.extend_from_slice(&r.seed.to_le_bytes());
            v.extend_from_slice(&r.offset.to_le_bytes());
        }
        v
    }
}

/// Per-row constraints and log-normaliser partials of a fused launch (`Extras` in
/// kernels/common.cuh: 96 bytes, passed by value). A zero pointer means "none".
///
/// - `mask`: the rows' allowed-token bitmasks concatenated (bit `t % 32` of word `t / 32` for
///   global token `t`); `mask_start`: per row, its first word, [`NO_MASK`] for none;
/// - `adjust_start`: `batch + 1` offsets into `adjust_token` (global tokens, increasing within a
///   row) and `adjust_coef` (three f32 per entry: scale of positive logits, scale of the rest,
///   added), as [`flashsampling_core::constraints::RowTransform::adjustments`] gives them;
/// - `norms`: `[batch][norm_slots]` `(max y, Σ exp(y − max y))` f32 pairs, merged in slot order.
///   A launch writes every one: each block its own slot, and block 0 the empty partial `(-inf, 0)`
///   into the slots past the grid. [`simt_norm_slots`] and
///   [`crate::CudaBackend::norm_slots`] say how many a launch needs;
/// - `scaled`: `[rows that rank][v_rows]` f32 `y = l̃ / T` (untempered for greedy rows), and
///   `scaled_row`: per row, its ranking row or [`NO_MASK`] when it ranks nothing;
/// - or, instead of `scaled` (tensor-core kernels only, rows that keep at most [`LIST_KEEP_MAX`]
///   keys): `lists`, `[ranking row][norm_slots][`[`LIST_SLOTS`]`]` keys, each block's list of the
///   row's keys, which together always hold the row's `list_keep` largest; `heads`, `[ranking
///   row][norm_slots]` of [`LIST_HEAD_BYTES`] (keys kept, whether the list left keys out, largest
///   key), every one written by the launch (block 0 empties the slots past the grid); and `tops`,
///   `[ranking row][norm_slots]` u32, the board on which the blocks share their lists' tops
///   (tile_lists.cuh): it must be zero before the first launch, and each launch leaves it zero;
///   `lists_draw` 1 when every ranking row truncates, so that the selection draws its samples
///   (finish.cu): the launch then draws no candidates for them, and leaves their `out` alone.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Extras {
    pub mask: sys::CUdeviceptr,
    pub mask_start: sys::CUdeviceptr,
    pub adjust_start: sys::CUdeviceptr,
    pub adjust_token: sys::CUdeviceptr,
    pub adjust_coef: sys::CUdeviceptr,
    pub norms: sys::CUdeviceptr,
    pub scaled: sys::CUdeviceptr,
    pub scaled_row: sys::CUdeviceptr,
    pub lists: sys::CUdeviceptr,
    pub heads: sys::CUdeviceptr,
    pub norm_slots: u32,
    pub list_keep: u32,
    pub tops: sys::CUdeviceptr,
    pub lists_draw: u32,
}

// The kernels take it by value with this layout.
const _: () = assert!(std::mem::size_of::<Extras>() == 104);

/// Keys of one per-tile list (`LIST_SLOTS` in tile_lists.cuh).
pub const LIST_SLOTS: usize = 256;
/// The most keys a ranking row may ask of the per-tile lists (`LIST_KEEP_MAX` in tile_lists.cuh).
pub const LIST_KEEP_MAX: usize = 64;
/// Bytes of a list's head (`ListHead` in tile_lists.cuh).
pub const LIST_HEAD_BYTES: usize = 16;

/// `mask_start` of a row without a bitmask.
pub const NO_MASK: u32 = u32::MAX;

impl Extras {
    /// The tables of the rows from `b0` on (a pass over part of the batch).
    fn past_rows(&self, b0: u32) -> Self {
        let skip = |p: sys::CUdeviceptr, bytes_per_row: u64| if p == 0 { 0 } else { p + u64::from(b0) * bytes_per_row };
        Extras {
            mask_start: skip(self.mask_start, 4),
            adjust_start: skip(self.adjust_start, 4),
            scaled_row: skip(self.scaled_row, 4),
            norms: skip(self.norms, 8 * u64::from(self.norm_slots)),
            ..*self
        }
    }
}

/// One fused sampling launch on device memory the caller owns.
///
/// - `w`: `[v_rows, dim]` row-major weights of `w_dtype` (a vocabulary shard whose row 0 is global
///   token `vocab_offset`); `h`: `[batch, dim]` hidden states of `h_dtype`;
/// - `rows`: `batch` [`RowArgs`]; `out`: `batch × samples` `u64` packed candidates, overwritten;
/// - `extras`: constraints and log-normaliser partials, run by the `_ex` kernels; `None` runs the
///   plain ones;
/// - `dim` a multiple of 8 and every pointer 16-byte aligned (32 for f32 weights or hidden states).
#[derive(Debug, Clone, Copy)]
pub struct FusedArgs {
    pub w: sys::CUdeviceptr,
    pub w_dtype: DType,
    pub h: sys::CUdeviceptr,
    pub h_dtype: DType,
    pub rows: sys::CUdeviceptr,
    pub out: sys::CUdeviceptr,
    pub v_rows: u32,
    pub dim: u32,
    pub batch: u32,
    pub samples: u32,
    pub vocab_offset: u32,
    pub extras: Option<Extras>,
}

/// One sampling-from-logits launch: `logits` is `[batch, v_rows]` row-major, the rest as in
/// [`FusedArgs`].
#[derive(Debug, Clone, Copy)]
pub struct LogitsArgs {
    pub logits: sys::CUdeviceptr,
    pub dtype: LogitsDType,
    pub rows: sys::CUdeviceptr,
    pub out: sys::CUdeviceptr,
    pub v_rows: u32,
    pub batch: u32,
    pub samples: u32,
    pub vocab_offset: u32,
}

/// Vocabulary rows per block of the CUDA-core fused kernel (`TILE` in fused_simt.cu).
const FUSED_TILE: u32 = 32;
/// Tokens per block of the logits kernel (`LOGIT_TILE` in logits.cu).
const LOGIT_TILE: u32 = 1024;
const THREADS: u32 = 256;
const MAX_GRID_Y: u32 = 65_535;
/// Blocks that fill an H100/H200 several times over; sample slicing aims at this many.
const TARGET_BLOCKS: u32 = 2048;

/// Blocks along the sample axis: enough to fill the device when tiles are few and samples many.
fn sample_slices(tiles: u32, pairs: u64) -> u32 {
    let wanted = pairs.div_ceil(u64::from(THREADS)).min(u64::from(MAX_GRID_Y)) as u32;
    wanted.clamp(1, (TARGET_BLOCKS / tiles.max(1)).max(1))
}

fn check_common(batch: u32, samples: u32, v_rows: u32) -> Result<()> {
    if batch == 0 || samples == 0 || v_rows == 0 {
        return Err(Error::Shape(format!("empty launch: batch {batch}, samples {samples}, rows {v_rows}")));
    }
    Ok(())
}

fn check_fused(a: &FusedArgs) -> Result<()> {
    check_common(a.batch, a.samples, a.v_rows)?;
    if a.dim == 0 || a.dim % 8 != 0 {
        return Err(Error::Shape(format!("D = {} is not a positive multiple of 8", a.dim)));
    }
    Ok(())
}

/// Checks that a launch of `blocks` blocks has a log-normaliser slot for each, and that lists have
/// their board and the partials (a block publishes the maximum of its partials).
fn check_slots(extras: Option<&Extras>, blocks: u32) -> Result<()> {
    match extras {
        Some(e) if e.norms != 0 && e.norm_slots < blocks => {
            Err(Error::Shape(format!("{} log-normaliser slots per row for a launch of {blocks} blocks", e.norm_slots)))
        }
        Some(e) if e.lists != 0 && (e.tops == 0 || e.norms == 0) => {
            Err(Error::Shape("per-tile lists without their board or the log-normaliser partials".into()))
        }
        _ => Ok(()),
    }
}

/// Log-normaliser slots per row that a launch of the CUDA-core kernel over `v_rows` needs (one
/// per vocabulary tile); the tensor-core kernel needs its persistent grid's size.
pub fn simt_norm_slots(v_rows: u32) -> u32 {
    v_rows.div_ceil(FUSED_TILE)
}

/// Zeroes the `batch × samples` candidates of `out` on `stream`: the kernels fold into it.
fn zero_candidates(out: sys::CUdeviceptr, batch: u32, samples: u32, stream: sys::CUstream) -> Result<()> {
    let bytes = batch as usize * samples as usize * 8;
    // SAFETY: the caller of the launch guarantees `out` holds batch × samples u64.
    unsafe { result::memset_d8_async(out, 0, bytes, stream) }.map_err(|e| device_error("zeroing the output", e))
}

/// The kernel parameters of [`FusedArgs`], in the order every fused entry point takes them.
struct FusedParams {
    w: sys::CUdeviceptr,
    h: sys::CUdeviceptr,
    rows: sys::CUdeviceptr,
    out: sys::CUdeviceptr,
    values: [u32; 5],
    extras: Option<Extras>,
    /// The tensor-core kernels' tensor maps of W and H (their last parameters).
    maps: Option<[sys::CUtensorMap; 2]>,
}

impl FusedParams {
    fn new(a: &FusedArgs) -> Self {
        FusedParams {
            w: a.w,
            h: a.h,
            rows: a.rows,
            out: a.out,
            values: [a.v_rows, a.dim, a.batch, a.samples, a.vocab_offset],
            extras: a.extras,
            maps: None,
        }
    }

    /// # Safety
    /// The pointers are valid until the launch that reads them has been enqueued.
    unsafe fn launch(
        &mut self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        threads: u32,
        shared: u32,
        stream: sys::CUstream,
    ) -> Result<()> {
        check_slots(self.extras.as_ref(), grid.0)?;
        let [v, d, b, s, off] = &mut self.values;
        let mut params: Vec<*mut c_void> = vec![
            (&mut self.w as *mut sys::CUdeviceptr).cast(),
            (&mut self.h as *mut sys::CUdeviceptr).cast(),
            (&mut self.rows as *mut sys::CUdeviceptr).cast(),
            (&mut self.out as *mut sys::CUdeviceptr).cast(),
            (v as *mut u32).cast(),
            (d as *mut u32).cast(),
            (b as *mut u32).cast(),
            (s as *mut u32).cast(),
            (off as *mut u32).cast(),
        ];
        if let Some(extras) = self.extras.as_mut() {
            params.push((extras as *mut Extras).cast());
        }
        if let Some([w, h]) = self.maps.as_mut() {
            params.push((w as *mut sys::CUtensorMap).cast());
            params.push((h as *mut sys::CUtensorMap).cast());
        }
        result::launch_kernel(f.cu_function(), grid, (threads, 1, 1), shared, stream, &mut params)
            .map_err(|e| device_error("launching the fused kernel", e))
    }
}

/// Zeroes `out`, then folds the winners into it with the CUDA-core kernel `f`; both on `stream`.
///
/// # Safety
/// The pointers must be valid device memory of the sizes [`FusedArgs`] describes, in the current
/// context, and stay alive until the stream has run the launch.
pub unsafe fn fused(f: &CudaFunction, a: &FusedArgs, stream: sys::CUstream) -> Result<()> {
    check_fused(a)?;
    zero_candidates(a.out, a.batch, a.samples, stream)?;
    let tiles = a.v_rows.div_ceil(FUSED_TILE);
    let slices =
        sample_slices(tiles, u64::from(a.batch.min(crate::kernels::fused_rows(a.batch))) * u64::from(a.samples));
    FusedParams::new(a).launch(f, (tiles, slices, 1), THREADS, 0, stream)
}

/// A tensor-core variant loaded for one device: the function and its persistent grid.
pub struct MmaKernel<'a> {
    pub function: &'a CudaFunction,
    /// Blocks that run at once on the whole device (multiprocessors × blocks per multiprocessor).
    pub resident_blocks: u32,
    pub threads: u32,
    pub shared_bytes: u32,
    /// Whether the variant fills its stages by TMA from tensor maps of W and H (the wide variant
    /// and the 16-n-tile wgmma one, `kernels::mma_uses_tma`); the others take zeroed maps.
    pub tma: bool,
    /// Hidden rows one launch takes (8 per n-tile).
    pub rows: u32,
}

/// Zeroes `out`, then folds the winners into it with the tensor-core kernel, one launch per pass;
/// `kernel(rows)` gives the variant for the `rows` hidden rows not yet taken, and its pass takes
/// as many of them as it holds.
///
/// # Safety
/// As for [`fused`]; 16-bit `w` and `h` of one dtype.
pub unsafe fn fused_mma<'a>(
    kernel: impl Fn(u32) -> Result<MmaKernel<'a>>,
    a: &FusedArgs,
    stream: sys::CUstream,
) -> Result<()> {
    check_fused(a)?;
    zero_candidates(a.out, a.batch, a.samples, stream)?;
    let tiles = a.v_rows.div_ceil(16);
    let h_row_bytes = u64::from(a.dim) * a.h_dtype.size() as u64;
    let mut b0 = 0;
    while b0 < a.batch {
        let k = kernel(a.batch - b0)?;
        let rows = (a.batch - b0).min(k.rows);
        let pass = FusedArgs {
            h: a.h + u64::from(b0) * h_row_bytes,
            rows: a.rows + u64::from(b0) * std::mem::size_of::<RowArgs>() as u64,
            out: a.out + u64::from(b0) * u64::from(a.samples) * 8,
            batch: rows,
            extras: a.extras.map(|e| e.past_rows(b0)),
            ..*a
        };
        let blocks = k.resident_blocks.clamp(1, tiles);
        let mut params = FusedParams::new(&pass);
        params.maps = Some(if k.tma {
            [tensor_map(pass.w, a.dim, a.v_rows, 128)?, tensor_map(pass.h, a.dim, rows, k.rows)?]
        } else {
            // SAFETY: CUtensorMap is plain bytes; a kernel without TMA never reads it.
            unsafe { std::mem::zeroed() }
        });
        params.launch(k.function, (blocks, 1, 1), k.threads, k.shared_bytes, stream)?;
        b0 += rows;
    }
    Ok(())
}

/// `rows` rows of `dim` 16-bit elements at `base` as a TMA tensor map whose box is one 64-element K
/// chunk of `box_rows` rows, with the 128-byte swizzle of the stages (fused_mma.cu's `swizzled`);
/// what lies past the rows or past `dim` reads as zero. Host work only: nothing is enqueued.
fn tensor_map(base: sys::CUdeviceptr, dim: u32, rows: u32, box_rows: u32) -> Result<sys::CUtensorMap> {
    let mut map = std::mem::MaybeUninit::<sys::CUtensorMap>::zeroed();
    let extent = [u64::from(dim), u64::from(rows)];
    let row_bytes = [u64::from(dim) * 2];
    let tile = [64u32, box_rows];
    let step = [1u32, 1];
    // SAFETY: every array has the length the rank (2) asks for; `map` receives the encoding.
    unsafe {
        sys::cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT16,
            2,
            base as *mut c_void,
            extent.as_ptr(),
            row_bytes.as_ptr(),
            tile.as_ptr(),
            step.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
        .result()
        .map_err(|e| device_error("encoding a tensor map", e))?;
        Ok(map.assume_init())
    }
}

/// Zeroes `out`, then samples from the logits into it; both on `stream`.
///
/// # Safety
/// As for [`fused`], with the sizes [`LogitsArgs`] describes.
pub unsafe fn from_logits(f: &CudaFunction, a: &LogitsArgs, stream: sys::CUstream) -> Result<()> {
    check_common(a.batch, a.samples, a.v_rows)?;
    if a.batch > MAX_GRID_Y {
        return Err(Error::Unsupported {
            backend: crate::NAME.into(),
            what: format!("batch {} over {MAX_GRID_Y} rows for the logits kernel", a.batch),
        });
    }
    zero_candidates(a.out, a.batch, a.samples, stream)?;
    let (mut l, mut rows, mut out) = (a.logits, a.rows, a.out);
    let (mut v, mut s, mut off) = (a.v_rows, a.samples, a.vocab_offset);
    let mut params: [*mut c_void; 6] = [
        (&mut l as *mut sys::CUdeviceptr).cast(),
        (&mut rows as *mut sys::CUdeviceptr).cast(),
        (&mut out as *mut sys::CUdeviceptr).cast(),
        (&mut v as *mut u32).cast(),
        (&mut s as *mut u32).cast(),
        (&mut off as *mut u32).cast(),
    ];
    let tiles = a.v_rows.div_ceil(LOGIT_TILE);
    let slices = if a.samples == 1 { 1 } else { sample_slices(tiles * a.batch, u64::from(a.samples)) };
    let grid = (tiles, a.batch, slices);
    result::launch_kernel(f.cu_function(), grid, (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the logits kernel", e))
}

/// Decodes `batch × samples` candidates into tokens (`u32`, row-major) and one status byte per row
/// on `stream`; rows flagged in `invalid` (a byte per row, or 0 for none) get
/// `FS_ROW_INVALID_PARAMS`.
///
/// # Safety
/// Device pointers of the current context holding `batch × samples` candidates and tokens,
/// `batch` [`RowArgs`], flags and status bytes, alive until the stream has run the launch.
pub unsafe fn decode(
    f: &CudaFunction,
    (cands, rows, invalid): (sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr),
    (tokens, statuses): (sys::CUdeviceptr, sys::CUdeviceptr),
    (batch, samples): (u32, u32),
    stream: sys::CUstream,
) -> Result<()> {
    let (mut c, mut r, mut inv, mut t, mut st) = (cands, rows, invalid, tokens, statuses);
    let (mut b, mut s) = (batch, samples);
    let mut params: [*mut c_void; 7] = [
        (&mut c as *mut sys::CUdeviceptr).cast(),
        (&mut r as *mut sys::CUdeviceptr).cast(),
        (&mut inv as *mut sys::CUdeviceptr).cast(),
        (&mut t as *mut sys::CUdeviceptr).cast(),
        (&mut st as *mut sys::CUdeviceptr).cast(),
        (&mut b as *mut u32).cast(),
        (&mut s as *mut u32).cast(),
    ];
    let blocks = batch.div_ceil(THREADS).clamp(1, MAX_GRID_Y);
    result::launch_kernel(f.cu_function(), (blocks, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the decode kernel", e))
}

/// Writes `starts[b] = b · words` for `batch` rows on `stream`: the `mask_start` table of a
/// caller's `[batch][words]` device mask.
///
/// # Safety
/// `starts` a device pointer of the current context holding `batch` u32, alive until the stream
/// has run the launch.
pub unsafe fn device_mask_rows(
    f: &CudaFunction,
    starts: sys::CUdeviceptr,
    batch: u32,
    words: u32,
    stream: sys::CUstream,
) -> Result<()> {
    let (mut st, mut b, mut w) = (starts, batch, words);
    let mut params: [*mut c_void; 3] =
        [(&mut st as *mut sys::CUdeviceptr).cast(), (&mut b as *mut u32).cast(), (&mut w as *mut u32).cast()];
    let blocks = batch.div_ceil(THREADS).clamp(1, MAX_GRID_Y);
    result::launch_kernel(f.cu_function(), (blocks, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the mask table kernel", e))
}

/// A caller's per-row token lists in device memory (`fs_cuda_options` of the C ABI): CSR
/// `offsets` (`batch + 1` u32) into `len` entries of `tokens`, `counts` and `bias` (either 0 for
/// none), with `batch` `penalties` (three f32 each, or 0 for none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceLists {
    pub offsets: sys::CUdeviceptr,
    pub tokens: sys::CUdeviceptr,
    pub counts: sys::CUdeviceptr,
    pub bias: sys::CUdeviceptr,
    pub penalties: sys::CUdeviceptr,
    pub len: u32,
}

/// Turns `lists` into the `_ex` kernels' `adjust_start` (`starts`, `batch + 1` u32) and
/// `adjust_coef` (`coef`, three f32 per entry) tables and flags bad rows in `invalid` (a byte per
/// row), in one block on `stream`.
///
/// # Safety
/// Device pointers of the current context of those sizes, alive until the stream has run it.
pub unsafe fn device_adjustments(
    f: &CudaFunction,
    lists: &DeviceLists,
    (batch, vocab_size): (u32, u32),
    (starts, coef, invalid): (sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr),
    stream: sys::CUstream,
) -> Result<()> {
    let (mut o, mut t, mut c, mut bi, mut p) = (lists.offsets, lists.tokens, lists.counts, lists.bias, lists.penalties);
    let (mut len, mut b, mut v) = (lists.len, batch, vocab_size);
    let (mut st, mut co, mut inv) = (starts, coef, invalid);
    let mut params: [*mut c_void; 11] = [
        (&mut o as *mut sys::CUdeviceptr).cast(),
        (&mut t as *mut sys::CUdeviceptr).cast(),
        (&mut c as *mut sys::CUdeviceptr).cast(),
        (&mut bi as *mut sys::CUdeviceptr).cast(),
        (&mut p as *mut sys::CUdeviceptr).cast(),
        (&mut len as *mut u32).cast(),
        (&mut b as *mut u32).cast(),
        (&mut v as *mut u32).cast(),
        (&mut st as *mut sys::CUdeviceptr).cast(),
        (&mut co as *mut sys::CUdeviceptr).cast(),
        (&mut inv as *mut sys::CUdeviceptr).cast(),
    ];
    result::launch_kernel(f.cu_function(), (1, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the adjustments kernel", e))
}

/// Writes the logprobs of `batch × samples` decoded candidates (`f32`, row-major) and each row's
/// log-normaliser (`f32`) from the merged `norms` ([`merge_norms`]) and the statuses [`decode`]
/// wrote, on `stream`; either output may be 0 (not written).
///
/// # Safety
/// Device pointers of the current context of those sizes, alive until the stream has run it.
pub unsafe fn decode_logprobs(
    f: &CudaFunction,
    (cands, rows, norms, statuses): (sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr),
    (logprobs, log_normalizer): (sys::CUdeviceptr, sys::CUdeviceptr),
    (batch, samples): (u32, u32),
    stream: sys::CUstream,
) -> Result<()> {
    let (mut c, mut r, mut n, mut st) = (cands, rows, norms, statuses);
    let (mut lp, mut lz, mut b, mut s) = (logprobs, log_normalizer, batch, samples);
    let mut params: [*mut c_void; 8] = [
        (&mut c as *mut sys::CUdeviceptr).cast(),
        (&mut r as *mut sys::CUdeviceptr).cast(),
        (&mut n as *mut sys::CUdeviceptr).cast(),
        (&mut st as *mut sys::CUdeviceptr).cast(),
        (&mut lp as *mut sys::CUdeviceptr).cast(),
        (&mut lz as *mut sys::CUdeviceptr).cast(),
        (&mut b as *mut u32).cast(),
        (&mut s as *mut u32).cast(),
    ];
    let blocks = (u64::from(batch) * u64::from(samples)).div_ceil(u64::from(THREADS)).clamp(1, u64::from(MAX_GRID_Y));
    result::launch_kernel(f.cu_function(), (blocks as u32, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the logprobs kernel", e))
}

/// The selection of each ranking row's most likely keys (select.cu), and the finishing of its
/// truncated rows (finish.cu), by value as their kernels take it: 128 bytes, `#[repr(C)]`.
///
/// - `scaled`: `[ranking row][v_rows]` f32 `y`, as the `_ex` kernels write them, or, where the
///   launch kept per-tile lists, `lists` and `heads` ([`Extras`]'s, `slots` per ranking row);
///   `scaled_row`: per batch row, its ranking row or [`NO_MASK`];
/// - `parts`: the fused launch's `[batch row][slots]` log-normaliser partials ([`Extras::norms`]);
///   `norms`: per batch row, written with their merge ([`merge_norms`]'s, so the call needs no
///   merge of its own), which a row finished on the device replaces by its survivors';
/// - `out_start`: ranking rows + 1 offsets: row `r` keeps up to `out_start[r + 1] - out_start[r]`
///   keys `pack(y, vocab_offset + i)`, masked tokens left out, from `keys + out_start[r]`, sorted
///   descending; `counts`: per ranking row, (keys written, tokens of y above -inf (from lists:
///   `u32::MAX` when some list left keys out, so more than it keeps), survivors, 1 when
///   finished on the device, 0 for a row that ranks only for its top-N, whose list the host copies
///   or [`decode_top`] reads);
/// - `rows`: per batch row, its [`RowArgs`]; `ranks`: per ranking row, its [`RankParams`];
///   `cands`: `[batch row][samples]` candidates, which a row finished on the device overwrites;
/// - `counters`: [`SELECT_COUNTER_BYTES`] per ranking row, `set`: [`SELECT_SET_KEYS`] `u64` per
///   ranking row: the passes' workspace.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SelectArgs {
    pub scaled: sys::CUdeviceptr,
    pub scaled_row: sys::CUdeviceptr,
    pub parts: sys::CUdeviceptr,
    pub norms: sys::CUdeviceptr,
    pub out_start: sys::CUdeviceptr,
    pub counters: sys::CUdeviceptr,
    pub set: sys::CUdeviceptr,
    pub keys: sys::CUdeviceptr,
    pub counts: sys::CUdeviceptr,
    pub rows: sys::CUdeviceptr,
    pub ranks: sys::CUdeviceptr,
    pub cands: sys::CUdeviceptr,
    pub lists: sys::CUdeviceptr,
    pub heads: sys::CUdeviceptr,
    pub v_rows: u32,
    pub vocab_offset: u32,
    pub samples: u32,
    pub slots: u32,
}

/// What one ranking row asks of the selection (`RankParams` in finish.cu): 16 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankParams {
    /// 0: none.
    pub top_k: u32,
    /// 1: none.
    pub top_p: f32,
    /// 0: none.
    pub min_p: f32,
    /// 0: the row ranks only for its top-N logprobs.
    pub truncated: u32,
}

impl RankParams {
    pub fn new(truncation: Option<&Truncation>) -> Self {
        let t = truncation.copied().unwrap_or_default();
        RankParams {
            top_k: t.top_k.unwrap_or(0),
            top_p: t.top_p.unwrap_or(1.0),
            min_p: t.min_p.unwrap_or(0.0),
            truncated: u32::from(truncation.is_some()),
        }
    }

    /// The little-endian bytes of `ranks`, ready for upload.
    pub fn to_bytes(ranks: &[RankParams]) -> Vec<u8> {
        ranks
            .iter()
            .flat_map(|q| [q.top_k, q.top_p.to_bits(), q.min_p.to_bits(), q.truncated])
            .flat_map(u32::to_le_bytes)
            .collect()
    }
}

/// `counts[4r + 3]` of a ranking row its selection finished on the device.
pub const FINISHED_ON_DEVICE: u32 = 1;

// The kernels take it by value with this layout.
const _: () = assert!(std::mem::size_of::<SelectArgs>() == 128);
const _: () = assert!(std::mem::size_of::<RankParams>() == 16);

/// Bytes of one ranking row's counters (`SelectCounters` in select.cu).
pub const SELECT_COUNTER_BYTES: usize = 144;
/// Keys of one ranking row's set (`SELECT_CAP` in select.cu).
pub const SELECT_SET_KEYS: usize = 4096;
/// Loads per thread of the counting and gathering passes (`CHUNK_LOADS` in select.cu).
const SELECT_CHUNK_LOADS: u32 = 16;

/// Whether the selection kernels take a batch of `batch` rows (one block row per batch row).
pub fn check_select_batch(batch: u32) -> Result<()> {
    if batch > MAX_GRID_Y {
        return Err(Error::Unsupported {
            backend: crate::NAME.into(),
            what: format!("batch {batch} over {MAX_GRID_Y} rows for the selection kernels"),
        });
    }
    Ok(())
}

/// Enqueues the selection over a batch of `batch` rows, `ranking_rows` of which rank. From scaled
/// logits: zeroes the counters, then counts (`count`, which also merges every row's log-normaliser
/// partials into `args.norms`) and gathers (`gather`, whose last block per row sorts the row's
/// kept keys and finishes a truncated row, from its whole row when they cannot certify it). From
/// per-tile lists (`args.lists`): one launch of `lists`, a block per batch row, which merges the
/// row's partials and its lists, sorts and finishes. Every truncated row ends
/// [`FINISHED_ON_DEVICE`].
///
/// # Safety
/// Device pointers of the current context of the sizes [`SelectArgs`] names, alive until the stream
/// has run the launches.
pub unsafe fn select_top(
    [count, gather, lists]: [&CudaFunction; 3],
    args: &SelectArgs,
    (batch, ranking_rows): (u32, u32),
    stream: sys::CUstream,
) -> Result<()> {
    check_select_batch(batch)?;
    let launch_err = |e| device_error("launching the selection kernels", e);
    let mut a = *args;
    let mut params: [*mut c_void; 1] = [(&mut a as *mut SelectArgs).cast()];
    if args.lists != 0 {
        return result::launch_kernel(
            lists.cu_function(),
            (1, batch, 1),
            (SELECT_LISTS_THREADS, 1, 1),
            0,
            stream,
            &mut params,
        )
        .map_err(launch_err);
    }
    result::memset_d8_async(args.counters, 0, ranking_rows as usize * SELECT_COUNTER_BYTES, stream)
        .map_err(|e| device_error("zeroing the selection counters", e))?;
    for (f, threads) in [(count, SELECT_CHUNK_THREADS), (gather, SELECT_THREADS)] {
        let chunks = (args.v_rows.div_ceil(threads * SELECT_CHUNK_LOADS), batch, 1);
        result::launch_kernel(f.cu_function(), chunks, (threads, 1, 1), 0, stream, &mut params).map_err(launch_err)?;
    }
    Ok(())
}

/// Turns a caller's `batch` rows of truncation in device memory (`truncation`: `fs_truncation`,
/// 12 bytes each, or 0 for none) and top-N lists of `top_n` tokens (0: none) into the selection's
/// `scaled_row`, `out_start` and `ranks` tables and flags bad rows in `invalid` (with `merge`,
/// keeping the flags already there), in one block on `stream`.
///
/// # Safety
/// Device pointers of the current context of those sizes, alive until the stream has run it.
pub unsafe fn device_rank_rows(
    f: &CudaFunction,
    ((truncation, top_n), (batch, merge)): ((sys::CUdeviceptr, u32), (u32, bool)),
    (scaled_row, out_start, ranks, invalid): (sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr, sys::CUdeviceptr),
    stream: sys::CUstream,
) -> Result<()> {
    let (mut t, mut n, mut b, mut m) = (truncation, top_n, batch, u32::from(merge));
    let (mut sr, mut os, mut rk, mut inv) = (scaled_row, out_start, ranks, invalid);
    let mut params: [*mut c_void; 8] = [
        (&mut t as *mut sys::CUdeviceptr).cast(),
        (&mut n as *mut u32).cast(),
        (&mut b as *mut u32).cast(),
        (&mut m as *mut u32).cast(),
        (&mut sr as *mut sys::CUdeviceptr).cast(),
        (&mut os as *mut sys::CUdeviceptr).cast(),
        (&mut rk as *mut sys::CUdeviceptr).cast(),
        (&mut inv as *mut sys::CUdeviceptr).cast(),
    ];
    result::launch_kernel(f.cu_function(), (1, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the ranking table kernel", e))
}

/// Writes each of `batch` rows' `n` most likely tokens (`tokens`, u32) and their logprobs
/// (`logprobs`, f32), `[row][n]`, from the keys the selection `select` kept and the log-normalisers
/// it left, after [`decode`] wrote `statuses`, on `stream`.
///
/// # Safety
/// Device pointers of the current context of those sizes, alive until the stream has run it; the
/// selection `select` enqueued before it on `stream`.
pub unsafe fn decode_top(
    f: &CudaFunction,
    (select, statuses): (&SelectArgs, sys::CUdeviceptr),
    (tokens, logprobs): (sys::CUdeviceptr, sys::CUdeviceptr),
    (batch, n): (u32, u32),
    stream: sys::CUstream,
) -> Result<()> {
    let mut a = *select;
    let (mut st, mut t, mut lp, mut b, mut per_row) = (statuses, tokens, logprobs, batch, n);
    let mut params: [*mut c_void; 6] = [
        (&mut a as *mut SelectArgs).cast(),
        (&mut st as *mut sys::CUdeviceptr).cast(),
        (&mut t as *mut sys::CUdeviceptr).cast(),
        (&mut lp as *mut sys::CUdeviceptr).cast(),
        (&mut b as *mut u32).cast(),
        (&mut per_row as *mut u32).cast(),
    ];
    let blocks = (u64::from(batch) * u64::from(n)).div_ceil(u64::from(THREADS)).clamp(1, u64::from(MAX_GRID_Y));
    result::launch_kernel(f.cu_function(), (blocks as u32, 1, 1), (THREADS, 1, 1), 0, stream, &mut params)
        .map_err(|e| device_error("launching the top-N kernel", e))
}

/// Merges each of `batch` rows' `slots` log-normaliser partials (`parts`, `[row][slot]` f32 pairs
/// as [`Extras::norms`] holds them) into `out`: per row a 16-byte `(f32 max, 4 bytes of padding,
/// f64 sum)`, the core's `LogSumExp`; deterministic.
///
/// # Safety
/// Device pointers of the current context of those sizes, alive until the stream has run it.
pub unsafe fn merge_norms(
    f: &CudaFunction,
    (parts, slots): (sys::CUdeviceptr, u32),
    batch: u32,
    out: sys::CUdeviceptr,
    stream: sys::CUstream,
) -> Result<()> {
    let (mut p, mut s, mut b, mut o) = (parts, slots, batch, out);
    let mut params: [*mut c_void; 4] = [
        (&mut p as *mut sys::CUdeviceptr).cast(),
        (&mut s as *mut u32).cast(),
        (&mut b as *mut u32).cast(),
        (&mut o as *mut sys::CUdeviceptr).cast(),
    ];
    let rows_per_block = THREADS / 32;
    result::launch_kernel(
        f.cu_function(),
        (batch.div_ceil(rows_per_block), 1, 1),
        (THREADS, 1, 1),
        0,
        stream,
        &mut params,
    )
    .map_err(|e| device_error("launching the log-normaliser merge", e))
}

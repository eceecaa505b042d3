//! [`CudaBackend`]: the [`Backend`] trait on one CUDA device, with device-resident LM heads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr};
use flashsampling_core::truncation::MAX_TOP_K;
use flashsampling_core::validate::MAX_SAMPLES;
use flashsampling_core::{
    logsumexp::LogSumExp, survivors::RowPlan, validate, Backend, BackendInfo, DType, DeviceInfo, Error, Feature,
    Features, LmHead, LmHeadRef, Request, Result, RowOutputs,
};

use crate::arena::Arena;
use crate::constraints::ConstraintTables;
use crate::driver::{device_error, driver_present, nvrtc_present, unavailable};
use crate::kernels;

use crate::launch::{self, Extras, FusedArgs, LogitsArgs, MmaKernel, RowArgs};
use crate::ranking::RankingRows;
use crate::NAME;

/// One CUDA device: its context, a stream, and the kernels compiled for its architecture (once).
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: HashMap<String, CudaFunction>,
    /// Per tensor-core entry point whose shared memory the device has: the blocks that fit on the
    /// device at once.
    mma_blocks: HashMap<String, u32>,
    /// The widest tensor-core variant (n-tiles) the device has shared memory for, of the plain
    /// entry points and of the `_ex` ones (which need more: on a 99 KB device they stop at fewer
    /// n-tiles); None: none fits, and those 16-bit calls take the CUDA-core kernel.
    mma_max_tiles: [Option<u32>; 2],
    /// Whether the wide variants run here (fused_wide.cu: sm_90a, and the shared memory for them).
    wide: bool,
    /// The largest of `mma_blocks`: log-normaliser slots per row enough for any tensor-core launch.
    mma_norm_slots: u32,
    arch: String,
    /// The device memory of [`Backend`] calls, reused from call to call (one call at a time).
    arena: Mutex<Arena>,
}

/// An LM head resident in device memory: uploaded by [`Backend::load_lm_head`], or device memory a
/// caller owns ([`CudaBackend::borrow_lm_head`]), which is never freed here.
pub enum DeviceHead {
    Owned(CudaSlice<u8>),
    Borrowed(sys::CUdeviceptr),
}

impl DeviceHead {
    fn ptr(&self, stream: &CudaStream) -> sys::CUdeviceptr {
        match self {
            DeviceHead::Owned(weights) => weights.device_ptr(stream).0,
            DeviceHead::Borrowed(ptr) => *ptr,
        }
    }
}

impl CudaBackend {
    /// Opens device `ordinal`: `Unavailable` when libcuda, NVRTC or the device is missing.
    pub fn new(ordinal: usize) -> Result<Self> {
        if !driver_present() {
            return Err(unavailable("the CUDA driver library (libcuda) was not found"));
        }
        if !nvrtc_present() {
            return Err(unavailable("NVRTC 13 (libnvrtc.so.13) was not found; it compiles the kernels"));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| unavailable(format!("no CUDA device {ordinal}: {e}")))?;
        let (major, minor) = ctx.compute_capability().map_err(|e| device_error("compute capability", e))?;
        let arch = kernels::target_arch(major, minor);
        let ptx = kernels::compile_cached(&arch)?;
        let module = ctx.load_module(ptx).map_err(|e| device_error("loading the kernels", e))?;
        let mut functions = HashMap::new();
        for name in kernels::entry_points(&arch) {
            let f = module.load_function(&name).map_err(|e| device_error(&format!("kernel {name}"), e))?;
            functions.insert(name, f);
        }
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| device_error("multiprocessor count", e))? as u32;
        let shared_limit = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(|e| device_error("shared memory per block", e))? as u32;
        let mma_max_tiles = [false, true].map(|extras| {
            kernels::MMA_N_TILES.into_iter().rfind(|&nt| kernels::mma_shared_bytes(&arch, nt, extras) <= shared_limit)
        });
        let fitting: Vec<(u32, bool)> = [false, true]
            .into_iter()
            .flat_map(|extras| kernels::MMA_N_TILES.map(|nt| (nt, extras)))
            .filter(|&(nt, extras)| Some(nt) <= mma_max_tiles[usize::from(extras)])
            .collect();
        let wide = kernels::has_wide(&arch)
            && kernels::WIDE_N_TILES.iter().all(|&nt| kernels::wide_shared_bytes(nt) <= shared_limit);
        // Every tensor-core entry point the device runs: name, threads, dynamic shared memory.
        let mut launched: Vec<(String, u32, u32)> = [DType::Bf16, DType::F16]
            .into_iter()
            .flat_map(|e| fitting.iter().map(move |&(nt, extras)| (e, nt, extras)))
            .map(|(e, nt, extras)| {
                (mma_entry(e, nt, extras), kernels::MMA_THREADS, kernels::mma_shared_bytes(&arch, nt, extras))
            })
            .collect();
        if wide {
            for e in [DType::Bf16, DType::F16] {
                launched.extend(
                    kernels::WIDE_N_TILES
                        .map(|nt| (kernels::wide_name(e, nt), kernels::WIDE_THREADS, kernels::wide_shared_bytes(nt))),
                );
            }
        }
        let mut mma_blocks = HashMap::new();
        for (name, threads, shared) in launched {
            let f = &functions[&name];
            f.set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared as i32)
                .map_err(|e| device_error(&format!("shared memory of {name}"), e))?;
            let per_sm = f
                .occupancy_max_active_blocks_per_multiprocessor(threads, shared as usize, None)
                .map_err(|e| device_error(&format!("occupancy of {name}"), e))?;
            mma_blocks.insert(name, sms * per_sm.max(1));
        }
        let stream = ctx.default_stream();
        let mma_norm_slots = mma_blocks.values().copied().max().unwrap_or(1);
        let arena = Mutex::new(Arena::page_locked(ctx.clone()));
        Ok(CudaBackend { ctx, stream, functions, mma_blocks, mma_max_tiles, wide, mma_norm_slots, arch, arena })
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(crate) fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions.get(name).ok_or_else(|| device_error("missing kernel", name))
    }

    /// The entry points of the selection of ranking rows' keys and the finishing of truncated
    /// rows, in launch order.
    pub(crate) fn select_functions(&self) -> Result<[&CudaFunction; 3]> {
        let [count, gather, lists] = kernels::SELECT.map(|name| self.function(name));
        Ok([count?, gather?, lists?])
    }

    /// The raw-pointer fused launch on the caller's `stream`: zeroes `args.out`, then writes one
    /// packed candidate per (row, sample). Allocates nothing, copies nothing, never synchronises.
    ///
    /// # Safety
    /// See [`launch::fused`]: valid, aligned device pointers of this backend's context, alive
    /// until the stream has run the launch.
    pub unsafe fn sample_raw(&self, args: &FusedArgs, stream: sys::CUstream) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| device_error("binding the context", e))?;
        let extras = args.extras.is_some();
        if let Some(max_tiles) = self.mma_tiles_for(args.w_dtype, args.h_dtype, extras) {
            return launch::fused_mma(|rows| self.mma_kernel(args.w_dtype, rows, max_tiles, extras), args, stream);
        }
        let name = kernels::fused_name(args.w_dtype, args.h_dtype, kernels::fused_rows(args.batch));
        let name = if extras { kernels::with_extras(&name) } else { name };
        launch::fused(self.function(&name)?, args, stream)
    }

    /// Log-normaliser slots per row ([`launch::Extras::norm_slots`]) that a fused launch over
    /// `v_rows` weight rows of `w` and hidden states of `h` needs.
    pub fn norm_slots(&self, w: DType, h: DType, v_rows: u32) -> u32 {
        if self.mma_tiles_for(w, h, true).is_some() {
            self.mma_norm_slots
        } else {
            launch::simt_norm_slots(v_rows)
        }
    }

    /// The log-normaliser slots per row of a fused launch of weights `w` and hidden states `h` whose
    /// ranking rows keep per-tile candidate lists ([`launch::Extras::lists`]): wherever the
    /// tensor-core kernel runs (H100, top-k 50: faster than writing the scaled logits at every
    /// shape and batch of DESIGN.md §6 since the lists raise their floors from each other's
    /// maxima); `None` where the CUDA-core kernel runs, which writes the scaled logits instead.
    pub fn list_slots(&self, w: DType, h: DType) -> Option<u32> {
        self.mma_tiles_for(w, h, true).map(|_| self.mma_norm_slots)
    }

    /// The widest tensor-core variant for weights of `w` and hidden states of `h`, with or without
    /// `extras`, when the tensor-core kernel takes them on this device.
    fn mma_tiles_for(&self, w: DType, h: DType, extras: bool) -> Option<u32> {
        self.mma_max_tiles[usize::from(extras)].filter(|_| kernels::mma_supported(w, h))
    }

    /// The tensor-core variant of at most `max_tiles` n-tiles for a pass over `rows` hidden rows
    /// of 16-bit type `e`.
    fn mma_kernel(&self, e: DType, rows: u32, max_tiles: u32, extras: bool) -> Result<MmaKernel<'_>> {
        let wide = self.wide && !extras && rows > 8 * max_tiles;
        let (name, threads, shared_bytes, nt) = if wide {
            let nt = kernels::WIDE_N_TILES[0];
            (kernels::wide_name(e, nt), kernels::WIDE_THREADS, kernels::wide_shared_bytes(nt), nt)
        } else {
            let nt = kernels::mma_n_tiles(rows, max_tiles);
            (mma_entry(e, nt, extras), kernels::MMA_THREADS, kernels::mma_shared_bytes(&self.arch, nt, extras), nt)
        };
        let resident_blocks = *self.mma_blocks.get(&name).ok_or_else(|| device_error("missing kernel", &name))?;
        let function = self.function(&name)?;
        let tma = wide || kernels::mma_uses_tma(&self.arch, nt);
        Ok(MmaKernel { function, resident_blocks, threads, shared_bytes, rows: 8 * nt, tma })
    }

    /// One sampling call on `head` (loaded or borrowed by this backend) with every buffer in device
    /// memory: [`CudaBackend::sample_raw`] on the head's weights, then with truncation or top-N the
    /// selection of the ranking rows' keys and the finishing of the truncated rows, then the
    /// candidates decoded into tokens and statuses (rows whose device inputs were bad get
    /// `FS_ROW_INVALID_PARAMS`) and, when asked, logprobs and the top-N lists. Checks what can be
    /// checked without reading device memory, then enqueues on `stream`.
    ///
    /// # Safety
    /// The pointers of `call` must be device memory of this context of the sizes [`DeviceCall`]
    /// states, alive until the stream has run the call.
    pub unsafe fn sample_head_raw(&self, head: &LmHead, call: &DeviceCall, stream: sys::CUstream) -> Result<()> {
        let dev = head.storage::<DeviceHead>(NAME)?;
        call.check(head)?;
        let words = head.vocab_size.div_ceil(32);
        let scratch = self.device_scratch(head, call.hidden_dtype, call.batch, call.samples, call.uses());
        if call.workspace_bytes < scratch.bytes {
            return Err(Error::Shape(format!(
                "a workspace of {} bytes for a call that needs {} (CudaBackend::device_workspace_bytes)",
                call.workspace_bytes, scratch.bytes
            )));
        }
        let at = |offset: usize| call.workspace + offset as u64;
        let (norms, norm_slots) = scratch.norms.map_or((0, 0), |(parts, slots)| (at(parts), slots));
        let mask_start = scratch.mask_rows.map_or(0, at);
        let (adjust_start, adjust_coef) = scratch.lists.map_or((0, 0), |(s, c)| (at(s), at(c)));
        let invalid = scratch.invalid.map_or(0, at);
        let merged = at(scratch.merged);
        let select = scratch.ranking.as_ref().map(|r| launch::SelectArgs {
            scaled: at(r.scaled),
            scaled_row: at(r.scaled_row),
            parts: norms,
            norms: merged,
            out_start: at(r.out_start),
            counters: at(r.counters),
            set: at(r.set),
            keys: at(r.keys),
            counts: at(r.counts),
            rows: call.rows,
            ranks: at(r.ranks),
            cands: call.workspace,
            lists: 0,
            heads: 0,
            v_rows: head.rows as u32,
            vocab_offset: head.vocab_offset,
            samples: call.samples,
            slots: norm_slots,
        });
        let extras = (norms != 0 || mask_start != 0 || adjust_start != 0).then(|| launch::Extras {
            mask: call.mask,
            mask_start,
            adjust_start,
            adjust_token: call.lists.map_or(0, |l| l.tokens),
            adjust_coef,
            norms,
            scaled: select.map_or(0, |a| a.scaled),
            scaled_row: select.map_or(0, |a| a.scaled_row),
            norm_slots,
            ..launch::Extras::default()
        });
        if extras.is_some() {
            self.ctx.bind_to_thread().map_err(|e| device_error("binding the context", e))?;
        }
        if mask_start != 0 {
            let f = self.function(kernels::DEVICE_MASK_ROWS)?;
            unsafe { launch::device_mask_rows(f, mask_start, call.batch, words, stream)? };
        }
        if let Some(lists) = &call.lists {
            let f = self.function(kernels::DEVICE_ADJUSTMENTS)?;
            let tables = (adjust_start, adjust_coef, invalid);
            unsafe { launch::device_adjustments(f, lists, (call.batch, head.vocab_size), tables, stream)? };
        }
        if let Some(a) = &select {
            let f = self.function(kernels::DEVICE_RANK_ROWS)?;
            let input = ((call.truncation, call.top_n), (call.batch, call.lists.is_some()));
            unsafe { launch::device_rank_rows(f, input, (a.scaled_row, a.out_start, a.ranks, invalid), stream)? };
        }
        let args = FusedArgs {
            w: dev.ptr(&self.stream),
            w_dtype: head.dtype,
            h: call.hidden,
            h_dtype: call.hidden_dtype,
            rows: call.rows,
            out: call.workspace,
            v_rows: head.rows as u32,
            dim: head.dim as u32,
            batch: call.batch,
            samples: call.samples,
            vocab_offset: head.vocab_offset,
            extras,
        };
        unsafe { self.sample_raw(&args, stream)? };
        if let Some(a) = &select {
            // Merges the log-normalisers; truncated rows replace their candidates and
            // log-normalisers by their survivors'.
            unsafe { launch::select_top(self.select_functions()?, a, (call.batch, call.batch), stream)? };
        } else if norms != 0 {
            let merge = self.function(kernels::MERGE_NORMS)?;
            unsafe { launch::merge_norms(merge, (norms, norm_slots), call.batch, merged, stream)? };
        }
        let io = ((call.workspace, call.rows, invalid), (call.tokens, call.statuses));
        unsafe { launch::decode(self.function(kernels::DECODE)?, io.0, io.1, (call.batch, call.samples), stream)? };
        if call.logprobs != 0 || call.log_normalizer != 0 {
            let f = self.function(kernels::DECODE_LOGPROBS)?;
            let inputs = (call.workspace, call.rows, merged, call.statuses);
            let outputs = (call.logprobs, call.log_normalizer);
            unsafe { launch::decode_logprobs(f, inputs, outputs, (call.batch, call.samples), stream)? };
        }
        if let Some(a) = select.as_ref().filter(|_| call.top_n > 0) {
            let f = self.function(kernels::DECODE_TOP)?;
            let outputs = (call.top_tokens, call.top_logprobs);
            unsafe { launch::decode_top(f, (a, call.statuses), outputs, (call.batch, call.top_n), stream)? };
        }
        Ok(())
    }

    /// Bytes of device workspace a [`CudaBackend::sample_head_raw`] call on `head` needs: the
    /// candidates; with a mask its row table; with token lists their tables; with token lists,
    /// truncation or top-N a flag per row; with logprobs, log-normalisers, truncation or top-N the
    /// log-normaliser partials and their merge; with truncation or top-N every row's scaled logits
    /// and the selection's buffers. `Error::Param` for top-N lists over
    /// [`flashsampling_core::truncation::MAX_TOP_LOGPROBS`].
    pub fn device_workspace_bytes(
        &self,
        head: &LmHead,
        hidden: DType,
        batch: u32,
        samples: u32,
        uses: DeviceUses,
    ) -> Result<usize> {
        validate::top_logprobs(uses.top_n)?;
        Ok(self.device_scratch(head, hidden, batch, samples, uses).bytes)
    }

    fn device_scratch(
        &self,
        head: &LmHead,
        hidden: DType,
        batch: u32,
        samples: u32,
        uses: DeviceUses,
    ) -> DeviceScratch {
        let mut bytes = batch as usize * samples as usize * 8;
        let mut place = |len: usize| {
            let at = bytes.next_multiple_of(256);
            bytes = at + len;
            at
        };
        let rows = batch as usize;
        let mask_rows = uses.mask.then(|| place(rows * 4));
        let lists = uses.lists.map(|len| (place((rows + 1) * 4), place(len as usize * 12)));
        let invalid = (uses.lists.is_some() || uses.ranks()).then(|| place(rows));
        let (norms, merged) = if uses.logprobs || uses.ranks() {
            let slots = self.norm_slots(head.dtype, hidden, head.rows as u32);
            let parts = place(rows * slots as usize * 8);
            (Some((parts, slots)), place(rows * 16))
        } else {
            (None, 0)
        };
        let ranking = uses.ranks().then(|| RankingScratch {
            scaled: place(rows * head.rows * 4),
            scaled_row: place(rows * 4),
            out_start: place((rows + 1) * 4),
            ranks: place(rows * 16),
            keys: place(rows * MAX_TOP_K as usize * 8),
            counts: place(rows * 16),
            counters: place(rows * launch::SELECT_COUNTER_BYTES),
            set: place(rows * launch::SELECT_SET_KEYS * 8),
        });
        DeviceScratch { mask_rows, lists, invalid, norms, merged, ranking, bytes }
    }

    /// An LM head over device memory the caller owns and keeps alive while the head is used:
    /// `weights` is `[rows, dim]` of `dtype`, the shard at `vocab_offset` of `vocab_size` tokens.
    /// Nothing is copied and the memory is never freed here.
    ///
    /// # Safety
    /// `weights` must be a device pointer of this backend's context, aligned to 16 bytes (32 for
    /// f32), valid for `rows × dim` elements for as long as the head is used.
    pub unsafe fn borrow_lm_head(
        &self,
        weights: sys::CUdeviceptr,
        dtype: DType,
        (rows, dim): (usize, usize),
        (vocab_offset, vocab_size): (u32, u32),
    ) -> Result<LmHead> {
        check_head_dim(dim, rows)?;
        if weights == 0 || weights % 16 != 0 {
            return Err(Error::Shape(format!("device weights at {weights:#x} are not 16-byte aligned")));
        }
        LmHead::external(NAME, dtype, (rows, dim), (vocab_offset, vocab_size), DeviceHead::Borrowed(weights))
    }

    /// The raw-pointer launch of sampling from materialised logits (the unfused path), with the
    /// same guarantees as [`CudaBackend::sample_raw`].
    ///
    /// # Safety
    /// See [`launch::from_logits`].
    pub unsafe fn sample_logits_raw(&self, args: &LogitsArgs, stream: sys::CUstream) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| device_error("binding the context", e))?;
        launch::from_logits(self.function(kernels::logits_name(args.dtype))?, args, stream)
    }

    fn upload(&self, bytes: &[u8]) -> Result<CudaSlice<u8>> {
        self.stream.clone_htod(bytes).map_err(|e| device_error("upload", e))
    }

    /// One call of the [`Backend`] trait, in the backend's arena: one upload of the request, the
    /// launches, one download of the candidates and outputs. With `outputs`, also each row's
    /// log-normaliser over the shard and its top-N keys. Rows that rank their tokens (truncation,
    /// top-N) are finished by [`RankingRows`].
    fn run(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64], outputs: Option<RowOutputs<'_>>) -> Result<()> {
        let dev = head.storage::<DeviceHead>(NAME)?;
        let batch = u32::try_from(req.hidden.batch).map_err(|_| Error::Shape("batch over u32".into()))?;
        let h_dtype = req.hidden.data.dtype();
        let v_rows = head.rows as u32;
        let plans = RowPlan::of_request(req);
        let transforms = validate::transforms(req, head.vocab_size)?;
        let slots = self.norm_slots(head.dtype, h_dtype, v_rows);

        let mut arena = self.arena.lock().map_err(|_| device_error("the call arena", "poisoned by a panic"))?;
        let mut layout = arena.layout()?;
        let hidden = layout.input(req.hidden.data.as_bytes());
        let rows: Vec<RowArgs> = req.rows.iter().map(RowArgs::from_params).collect();
        let rows = layout.input(&RowArgs::to_bytes(&rows));
        let tables = ConstraintTables::new(&transforms).map(|t| t.stage(&mut layout));
        let list_slots = self.list_slots(head.dtype, h_dtype);
        let ranking = RankingRows::stage(&plans, v_rows, list_slots, &mut layout);
        let normalize = outputs.is_some() || ranking.is_some();
        let norm_parts = normalize.then(|| layout.scratch(8 * batch as usize * slots as usize));
        let cands = layout.output(8 * out.len());
        let merged = normalize.then(|| layout.output(16 * batch as usize));
        let call = arena.bind(&self.stream, layout)?;
        let mut extras = tables.as_ref().map(|t| t.extras(&call));
        let cu = self.stream.cu_stream();
        if let Some(parts) = norm_parts {
            let e = extras.get_or_insert_with(Extras::default);
            e.norms = call.ptr(parts);
            e.norm_slots = slots;
        }
        if let Some(r) = &ranking {
            r.point(&call, extras.get_or_insert_with(Extras::default));
        }
        let args = FusedArgs {
            w: dev.ptr(&self.stream),
            w_dtype: head.dtype,
            h: call.ptr(hidden),
            h_dtype,
            rows: call.ptr(rows),
            out: call.ptr(cands),
            v_rows,
            dim: head.dim as u32,
            batch,
            samples: req.samples,
            vocab_offset: head.vocab_offset,
            extras,
        };
        // SAFETY: regions of the call's arena, sized by the validated request; the arena is held
        // (locked) until the download below has synchronised.
        unsafe { self.sample_raw(&args, cu)? };
        if let (Some(parts), Some(merged)) = (norm_parts, merged) {
            let norms = ((call.ptr(parts), slots), call.ptr(merged));
            if let Some(r) = &ranking {
                let batch_io = (args.rows, args.out, args.samples);
                r.select(self.select_functions()?, (&call, &self.stream), batch_io, head.vocab_offset, norms)?;
            } else {
                let f = self.function(kernels::MERGE_NORMS)?;
                // SAFETY: as above; `merge_norms` writes every row of `merged`.
                unsafe { launch::merge_norms(f, norms.0, batch, norms.1, cu)? };
            }
        }
        let downloaded = call.download(&self.stream)?;

        out.copy_from_slice(&downloaded.u64s(cands));
        let mut norms = vec![LogSumExp::EMPTY; plans.len()];
        if let Some(merged) = merged {
            for (norm, row) in norms.iter_mut().zip(downloaded.get(merged).chunks_exact(16)) {
                let max = f32::from_le_bytes(row[..4].try_into().expect("4 bytes"));
                *norm = LogSumExp { max, sum: f64::from_le_bytes(row[8..].try_into().expect("8 bytes")) };
            }
        }
        let mut no_top = [];
        let (out_norms, top) = match outputs {
            Some(o) => (Some(o.norms), o.top),
            None => (None, &mut no_top[..]),
        };
        if let Some(r) = &ranking {
            let (samples, n) = (req.samples as usize, req.top_logprobs as usize);
            r.finish(&downloaded, (&plans, req.rows), &mut norms, (out, samples), (top, n));
        }
        if let Some(out_norms) = out_norms {
            out_norms.copy_from_slice(&norms);
        }
        Ok(())
    }
}

/// The entry point of the tensor-core variant with `n_tiles`, with or without extras.
fn mma_entry(e: DType, n_tiles: u32, extras: bool) -> String {
    let name = kernels::mma_name(e, n_tiles);
    if extras {
        kernels::with_extras(&name)
    } else {
        name
    }
}

/// Device buffers of one [`CudaBackend::sample_head_raw`] call.
#[derive(Debug, Clone, Copy)]
pub struct DeviceCall {
    /// `[batch, D]` hidden states of `hidden_dtype`, 16-byte aligned (32 for f32).
    pub hidden: sys::CUdeviceptr,
    pub hidden_dtype: DType,
    pub batch: u32,
    /// `batch` [`crate::RowArgs`] (`fs_row_params`).
    pub rows: sys::CUdeviceptr,
    pub samples: u32,
    /// Scratch of `workspace_bytes` bytes ([`CudaBackend::device_workspace_bytes`]): the
    /// `batch × samples` u64 candidates first, overwritten.
    pub workspace: sys::CUdeviceptr,
    pub workspace_bytes: usize,
    /// `batch × samples` u32 tokens, row-major.
    pub tokens: sys::CUdeviceptr,
    /// `batch` status bytes (`fs_row_status`).
    pub statuses: sys::CUdeviceptr,
    /// `batch × samples` f32 logprobs of the samples, row-major, or 0 for none.
    pub logprobs: sys::CUdeviceptr,
    /// `batch` f32 log-normalisers, or 0 for none.
    pub log_normalizer: sys::CUdeviceptr,
    /// `batch × ceil(vocab_size / 32)` u32 words of allowed tokens, row-major (bit `t % 32` of a
    /// row's word `t / 32` set: global token `t` allowed), or 0 for none.
    pub mask: sys::CUdeviceptr,
    /// Per-row token lists with generation counts, biases and penalties, or `None`.
    pub lists: Option<launch::DeviceLists>,
    /// `batch` rows of truncation (`fs_truncation`: u32 top-k, f32 top-p, f32 min-p; 4-byte
    /// aligned), or 0 for none.
    pub truncation: sys::CUdeviceptr,
    /// Each row's `top_n` (at most [`flashsampling_core::truncation::MAX_TOP_LOGPROBS`]; 0: none)
    /// most likely tokens, of the distribution it samples from, with their logprobs: `batch × top_n`
    /// u32 `top_tokens` and f32 `top_logprobs`, row-major, most likely first (ties by lower token
    /// id); past a row's tokens of positive probability token 0 and -inf, a bad row tokens 0 and
    /// NaN. Both 4-byte aligned.
    pub top_n: u32,
    pub top_tokens: sys::CUdeviceptr,
    pub top_logprobs: sys::CUdeviceptr,
}

impl DeviceCall {
    fn uses(&self) -> DeviceUses {
        DeviceUses {
            mask: self.mask != 0,
            lists: self.lists.map(|l| l.len),
            logprobs: self.logprobs != 0 || self.log_normalizer != 0,
            truncation: self.truncation != 0,
            top_n: self.top_n,
        }
    }

    /// What can be checked on `head` without reading device memory: pointers, sizes, parameters.
    fn check(&self, head: &LmHead) -> Result<()> {
        let aligned = |p: sys::CUdeviceptr, to: u64| p != 0 && p % to == 0;
        let optional = |p: sys::CUdeviceptr| p == 0 || p % 4 == 0;
        if !aligned(self.hidden, 16)
            || !aligned(self.rows, 8)
            || !aligned(self.workspace, 8)
            || !aligned(self.tokens, 4)
            || !optional(self.logprobs)
            || !optional(self.log_normalizer)
            || !optional(self.mask)
            || !optional(self.truncation)
            || !self.lists.is_none_or(|l| {
                aligned(l.offsets, 4)
                    && (l.len == 0 || aligned(l.tokens, 4))
                    && optional(l.counts)
                    && optional(l.bias)
                    && optional(l.penalties)
            })
            || (self.top_n > 0 && !(aligned(self.top_tokens, 4) && aligned(self.top_logprobs, 4)))
        {
            return Err(Error::Shape(
                "device buffers must be non-NULL and aligned: hidden 16 bytes, rows and workspace 8, tokens 4, \
                 top-N tokens and logprobs 4 when top_n > 0 (logprobs, log-normalisers, mask, token lists and \
                 truncation, when given, 4)"
                    .into(),
            ));
        }
        if self.statuses == 0 {
            return Err(Error::Shape("the statuses buffer is NULL".into()));
        }
        if self.batch == 0 || self.samples == 0 || self.samples > MAX_SAMPLES {
            return Err(Error::Param {
                row: None,
                what: format!(
                    "batch {} and samples {} must be positive, samples at most {MAX_SAMPLES}",
                    self.batch, self.samples
                ),
            });
        }
        validate::top_logprobs(self.top_n)?;
        let words = head.vocab_size.div_ceil(32);
        if self.mask != 0 && u64::from(self.batch) * u64::from(words) > u64::from(u32::MAX) {
            return Err(Error::Shape(format!("a mask of {} rows × {words} words exceeds u32 words", self.batch)));
        }
        if self.uses().ranks() {
            validate::whole_vocabulary(head.vocab_offset, head.rows, head.vocab_size)?;
            launch::check_select_batch(self.batch)?;
        }
        Ok(())
    }
}

/// What a device call uses beyond tokens and statuses: it decides the call's workspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceUses {
    /// A device mask ([`DeviceCall::mask`]).
    pub mask: bool,
    /// Token lists ([`DeviceCall::lists`]) of this many entries.
    pub lists: Option<u32>,
    /// Logprobs or log-normalisers.
    pub logprobs: bool,
    /// Truncation ([`DeviceCall::truncation`]).
    pub truncation: bool,
    /// Top-N lists of this many tokens per row ([`DeviceCall::top_n`]; 0: none).
    pub top_n: u32,
}

impl DeviceUses {
    /// Whether rows rank their tokens (truncation, top-N): the selection's buffers and launches.
    fn ranks(&self) -> bool {
        self.truncation || self.top_n > 0
    }
}

/// Where a device call keeps its scratch in the caller's workspace (offsets): the candidates at 0,
/// then with a mask its row table, with token lists their starts and coefficients, with token
/// lists or ranking rows (truncation, top-N) a flag per row, with logprobs or ranking rows the
/// log-normaliser partials (and slots per row) and their merge, with ranking rows the selection's
/// buffers.
struct DeviceScratch {
    mask_rows: Option<usize>,
    lists: Option<(usize, usize)>,
    invalid: Option<usize>,
    norms: Option<(usize, u32)>,
    merged: usize,
    ranking: Option<RankingScratch>,
    bytes: usize,
}

/// A device call's selection buffers (offsets): every row may rank, keeping up to
/// [`MAX_TOP_K`] keys (`SelectArgs` in launch.rs names them).
struct RankingScratch {
    scaled: usize,
    scaled_row: usize,
    out_start: usize,
    ranks: usize,
    keys: usize,
    counts: usize,
    counters: usize,
    set: usize,
}

/// What the kernels need of a head's shape: D a multiple of 8 (16-byte rows), rows within u32.
fn check_head_dim(dim: usize, rows: usize) -> Result<()> {
    if dim % 8 != 0 {
        return Err(Error::Unsupported { backend: NAME.into(), what: format!("D = {dim} is not a multiple of 8") });
    }
    if rows > u32::MAX as usize {
        return Err(Error::Unsupported { backend: NAME.into(), what: format!("{rows} rows") });
    }
    Ok(())
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> BackendInfo {
        let name = self.ctx.name().unwrap_or_else(|e| format!("unknown ({e})"));
        let sms = self
            .ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .ok()
            .map(|n| n as u32);
        BackendInfo {
            backend: NAME,
            devices: vec![DeviceInfo {
                name,
                memory_bytes: self.ctx.total_mem().ok().map(|m| m as u64),
                compute_units: sms,
                details: vec![
                    format!("arch: {}", self.arch),
                    "kernels: NVRTC; tensor-core (mma.sync) path for bf16/f16, CUDA-core path for f32 and mixed dtypes; features: constraints, logprobs, truncation and top-N (ranked and finished on the device)"
                        .into(),
                ],
            }],
        }
    }

    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead> {
        check_head_dim(head.dim, head.rows)?;
        let weights = self.upload(head.weights.as_bytes())?;
        // Raw launches run on callers' streams: the upload must be complete before any of them.
        self.stream.synchronize().map_err(|e| device_error("synchronize", e))?;
        Ok(LmHead::new(NAME, &head, DeviceHead::Owned(weights)))
    }

    fn features(&self) -> Features {
        Features::of(&[Feature::Constraints, Feature::Logprobs, Feature::Truncation, Feature::TopLogprobs])
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        self.run(head, req, out, None)
    }

    fn launch_with_outputs(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        outputs: RowOutputs<'_>,
    ) -> Result<()> {
        self.run(head, req, out, Some(outputs))
    }
}

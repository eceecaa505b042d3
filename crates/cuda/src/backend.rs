//! [`CudaBackend`]: the [`Backend`] trait on one CUDA device, with device-resident LM heads.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr};
use flashsampling_core::{Backend, BackendInfo, DType, DeviceInfo, Error, LmHead, LmHeadRef, Request, Result};

use crate::driver::{device_error, driver_present, nvrtc_present, unavailable};
use crate::kernels;
use crate::launch::{self, FusedArgs, LogitsArgs, MmaKernel, RowArgs};
use crate::NAME;

/// One CUDA device: its context, a stream, and the kernels compiled for its architecture (once).
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: HashMap<String, CudaFunction>,
    /// Per tensor-core entry point: the blocks that fit on the device at once.
    mma_blocks: HashMap<String, u32>,
    arch: String,
}

/// An LM head resident in device memory.
pub struct DeviceHead {
    weights: CudaSlice<u8>,
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
        let arch = format!("sm_{major}{minor}");
        let ptx = kernels::compile_cached(&arch)?;
        let module = ctx.load_module(ptx).map_err(|e| device_error("loading the kernels", e))?;
        let mut functions = HashMap::new();
        for name in kernels::entry_points() {
            let f = module.load_function(&name).map_err(|e| device_error(&format!("kernel {name}"), e))?;
            functions.insert(name, f);
        }
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| device_error("multiprocessor count", e))? as u32;
        let mut mma_blocks = HashMap::new();
        for e in [DType::Bf16, DType::F16] {
            for nt in kernels::MMA_N_TILES {
                let name = kernels::mma_name(e, nt);
                let f = &functions[&name];
                let shared = kernels::mma_shared_bytes(nt);
                f.set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    shared as i32,
                )
                .map_err(|e| device_error(&format!("shared memory of {name}"), e))?;
                let per_sm = f
                    .occupancy_max_active_blocks_per_multiprocessor(kernels::MMA_THREADS, shared as usize, None)
                    .map_err(|e| device_error(&format!("occupancy of {name}"), e))?;
                mma_blocks.insert(name, sms * per_sm.max(1));
            }
        }
        let stream = ctx.default_stream();
        Ok(CudaBackend { ctx, stream, functions, mma_blocks, arch })
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions.get(name).ok_or_else(|| device_error("missing kernel", name))
    }

    /// The raw-pointer fused launch on the caller's `stream`: zeroes `args.out`, then writes one
    /// packed candidate per (row, sample). Allocates nothing, copies nothing, never synchronises.
    ///
    /// # Safety
    /// See [`launch::fused`]: valid, aligned device pointers of this backend's context, alive
    /// until the stream has run the launch.
    pub unsafe fn sample_raw(&self, args: &FusedArgs, stream: sys::CUstream) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| device_error("binding the context", e))?;
        if kernels::mma_supported(args.w_dtype, args.h_dtype) {
            return launch::fused_mma(|rows| self.mma_kernel(args.w_dtype, rows), args, stream);
        }
        let name = kernels::fused_name(args.w_dtype, args.h_dtype, kernels::fused_rows(args.batch));
        launch::fused(self.function(&name)?, args, stream)
    }

    /// The tensor-core variant for a pass of `rows` hidden rows of 16-bit type `e`.
    fn mma_kernel(&self, e: DType, rows: u32) -> Result<MmaKernel<'_>> {
        let nt = kernels::mma_n_tiles(rows);
        let name = kernels::mma_name(e, nt);
        let resident_blocks = *self.mma_blocks.get(&name).ok_or_else(|| device_error("missing kernel", &name))?;
        Ok(MmaKernel { function: self.function(&name)?, resident_blocks, shared_bytes: kernels::mma_shared_bytes(nt) })
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
                    "kernels: NVRTC; tensor-core (mma.sync) path for bf16/f16, CUDA-core path for f32 and mixed dtypes"
                        .into(),
                ],
            }],
        }
    }

    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead> {
        if head.dim % 8 != 0 {
            return Err(Error::Unsupported {
                backend: NAME.into(),
                what: format!("D = {} is not a multiple of 8", head.dim),
            });
        }
        if head.rows > u32::MAX as usize {
            return Err(Error::Unsupported { backend: NAME.into(), what: format!("{} rows", head.rows) });
        }
        let weights = self.upload(head.weights.as_bytes())?;
        Ok(LmHead::new(NAME, &head, DeviceHead { weights }))
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        let dev = head.storage::<DeviceHead>(NAME)?;
        let batch = u32::try_from(req.hidden.batch).map_err(|_| Error::Shape("batch over u32".into()))?;
        let hidden = self.upload(req.hidden.data.as_bytes())?;
        let rows: Vec<RowArgs> = req.rows.iter().map(RowArgs::from_params).collect();
        let rows = self.upload(&RowArgs::to_bytes(&rows))?;
        // SAFETY: the context's own allocations; the output is fully written before it is read.
        let cands = unsafe { self.stream.alloc::<u64>(out.len()) }.map_err(|e| device_error("alloc", e))?;
        {
            let (w, _gw) = dev.weights.device_ptr(&self.stream);
            let (h, _gh) = hidden.device_ptr(&self.stream);
            let (r, _gr) = rows.device_ptr(&self.stream);
            let (o, _go) = cands.device_ptr(&self.stream);
            let args = FusedArgs {
                w,
                w_dtype: head.dtype,
                h,
                h_dtype: req.hidden.data.dtype(),
                rows: r,
                out: o,
                v_rows: head.rows as u32,
                dim: head.dim as u32,
                batch,
                samples: req.samples,
                vocab_offset: head.vocab_offset,
            };
            // SAFETY: pointers from live allocations of this context, sized by the validated request.
            unsafe { self.sample_raw(&args, self.stream.cu_stream())? };
        }
        self.stream.memcpy_dtoh(&cands, out).map_err(|e| device_error("download", e))?;
        self.stream.synchronize().map_err(|e| device_error("synchronize", e))?;
        Ok(())
    }
}

//! The WGSL (wgpu) backend: the portability path of DESIGN.md §4, running the shaders of
//! `shaders/` on any adapter wgpu finds (Mesa lavapipe in CI, NVIDIA/AMD/Intel Vulkan elsewhere).
//!
//! Weights of every dtype are read as `vec4<u32>` words: f32 as bits, bf16 and f16 unpacked two
//! per word (f16 with the core `unpack2x16float`). The device is opened with no optional feature:
//! no `shader-f16`, no subgroups, and at most WebGPU's guaranteed 16 KiB of workgroup memory, so
//! the one code path that runs everywhere is the one lavapipe tests. Hidden states are converted to
//! f32 on the host: they are small, and the dot product accumulates in f32 anyway.
//!
//! Pass 1 (shaders/sample.wgsl, tiling in its header and in `shape.rs`) computes a tile of logits
//! per workgroup with coalesced weight reads and a register tile over several hidden rows, then
//! samples the tile; pass 2 (shaders/reduce.wgsl) folds the tiles' winners. A call's buffers live in
//! a grow-only workspace (`workspace.rs`), so a call of a shape seen before allocates nothing.
//!
//! Offered features (`features.rs`): per-row constraints, logprobs, top-N logprobs and truncation.
//! Calls that use them run pass 1 with another epilogue (shaders/sample_features.wgsl, a pipeline
//! of its own, so plain calls run none of its code): it transforms each logit before temperature as
//! the core's `RowTransform` does (bias and penalties found by binary search in a per-call table,
//! then the mask), and leaves per (tile, row) the log-normaliser partial `(max y, Σ exp(y - max
//! y))`, merged on the host in tile order, the tile's N best keys, merged on the device by
//! shaders/top.wgsl, and the scaled logits of rows that top-k / top-p / min-p cut, which the host
//! ranks and shaders/finish.wgsl samples over their survivors (`truncation.rs`).

mod bandwidth;
mod context;
mod debug;
mod features;
mod head;
mod launch;
mod shape;
mod truncation;
mod workspace;

use std::time::{Duration, Instant};

use flashsampling_core::logsumexp::LogSumExp;
use flashsampling_core::{
    Backend, BackendInfo, DeviceInfo, Error, Feature, Features, LmHead, LmHeadRef, Request, Result, RowOutputs,
};

pub use bandwidth::Bandwidth;
pub use debug::NoiseQuery;

use context::Context;

const NAME: &str = "wgpu";

/// Calls per timing in [`WgpuBackend::passes_time`]; the least counts.
const PASS_TIMINGS: usize = 3;

/// Lower limits than the adapter's, for tests; `None` keeps the adapter's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    /// Bytes per storage binding: smaller heads split over several bindings, and calls with many
    /// samples over several launches.
    pub binding_bytes: Option<u64>,
}

/// The wgpu backend on one adapter.
pub struct WgpuBackend {
    ctx: Context,
}

/// Opens the wgpu backend on the adapter the environment selects (`WGPU_BACKEND`,
/// `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`); [`flashsampling_core::Error::Unavailable`] when there is none.
pub fn open() -> Result<Box<dyn Backend>> {
    Ok(Box::new(WgpuBackend::open()?))
}

impl WgpuBackend {
    pub fn open() -> Result<Self> {
        Self::open_with_caps(Caps::default())
    }

    /// As [`WgpuBackend::open`], with the adapter's limits lowered to `caps`: lets tests take on
    /// any adapter the paths that large heads or small adapters take.
    pub fn open_with_caps(caps: Caps) -> Result<Self> {
        Ok(WgpuBackend { ctx: Context::open(caps)? })
    }

    /// The device's memory bandwidth, read-only and copy: the benchmark's floor.
    pub fn bandwidth(&self) -> Result<Bandwidth> {
        bandwidth::measure(&self.ctx)
    }

    /// Device time per call of the sampling passes of a plain request (no constraints, outputs
    /// or truncation): the host time of a call whose passes run `repeats + 1` times
    /// back to back, less that of a call running them once, over `repeats`, each the least of
    /// three calls: a host stall in one call (on an H100, single calls took up to 2× the
    /// others) would otherwise swamp the difference. The benchmark reports it beside the time per
    /// call, which includes the host round trip. Passes shorter than the noise of the host's clock
    /// can come out as 0.
    pub fn passes_time(&self, head: &LmHead, req: &Request<'_>, repeats: u32) -> Result<Duration> {
        let mut out = vec![0u64; req.outputs()];
        self.check(head, req, &out)?;
        if req.constraints.is_some() || req.truncation.is_some() || req.logprobs || req.top_logprobs > 0 {
            return Err(Error::Unsupported {
                backend: NAME.into(),
                what: "timing the passes of a request with features".into(),
            });
        }
        let resident = head.storage::<head::ResidentHead>(NAME)?;
        let mut timed = |repeats| -> Result<Duration> {
            let mut least = Duration::MAX;
            for _ in 0..PASS_TIMINGS {
                let start = Instant::now();
                launch::run(&self.ctx, head, resident, req, &mut out, None, repeats)?;
                least = least.min(start.elapsed());
            }
            Ok(least)
        };
        let once = timed(1)?;
        let many = timed(repeats.max(1) + 1)?;
        Ok(many.saturating_sub(once) / repeats.max(1))
    }

    /// The noise word and Gumbel value the shaders compute for each query: for tests against the core.
    pub fn noise(&self, queries: &[NoiseQuery]) -> Result<Vec<(u32, f32)>> {
        debug::noise(&self.ctx, queries)
    }
}

/// The WGSL of pass 1 for plain calls (temperature only) with weights of `dtype` and `batch` rows,
/// as the backend compiles it: for tools that look at what a driver makes of it
/// (`examples/pipeline_stats.rs`).
pub fn sample_shader_source(dtype: flashsampling_core::DType, batch: usize) -> String {
    let shape = shape::SampleShape::for_batch(head::dtype_index(dtype), batch);
    context::sample_source(shape, context::Epilogue::Plain)
}

impl Backend for WgpuBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn info(&self) -> BackendInfo {
        let a = &self.ctx.adapter_info;
        let limits = &self.ctx.limits;
        let device = DeviceInfo {
            name: format!("{} ({:?}, {})", a.name, a.backend, a.driver),
            memory_bytes: None,
            compute_units: None,
            details: vec![
                format!("device type: {:?}", a.device_type),
                format!("driver info: {}", a.driver_info),
                format!("max storage buffer binding: {} bytes", limits.max_storage_buffer_binding_size),
                format!("max buffer size: {} bytes", limits.max_buffer_size),
            ],
        };
        BackendInfo { backend: NAME, devices: vec![device] }
    }

    fn load_lm_head(&self, head: LmHeadRef<'_>) -> Result<LmHead> {
        head.validate()?;
        let resident = head::upload(&self.ctx, &head)?;
        Ok(LmHead::new(NAME, &head, resident))
    }

    fn launch(&self, head: &LmHead, req: &Request<'_>, out: &mut [u64]) -> Result<()> {
        let resident = head.storage::<head::ResidentHead>(NAME)?;
        if truncation::truncates(req) {
            // Cutting a row needs its log-normaliser.
            let mut norms = vec![LogSumExp::EMPTY; req.rows.len()];
            let outputs = RowOutputs { norms: &mut norms, top: &mut [] };
            return launch::run_with_outputs(&self.ctx, head, resident, req, out, outputs);
        }
        launch::run(&self.ctx, head, resident, req, out, None, 1)
    }

    fn launch_with_outputs(
        &self,
        head: &LmHead,
        req: &Request<'_>,
        out: &mut [u64],
        outputs: RowOutputs<'_>,
    ) -> Result<()> {
        let resident = head.storage::<head::ResidentHead>(NAME)?;
        launch::run_with_outputs(&self.ctx, head, resident, req, out, outputs)
    }

    fn features(&self) -> Features {
        Features::of(&[Feature::Constraints, Feature::Logprobs, Feature::TopLogprobs, Feature::Truncation])
    }
}

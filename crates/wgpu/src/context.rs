//! The adapter, device and compiled pipelines of one backend instance.

use std::sync::{Mutex, OnceLock};

use flashsampling_core::{Error, Result};

use crate::shape::{SampleShape, BATCH_TILES};
use crate::workspace::Workspace;
use crate::Caps;

/// The concatenated sources of `shaders/`, named without their `.wgsl`.
macro_rules! shaders {
    ($($name:literal),+) => {
        concat!($(include_str!(concat!("../../../shaders/", $name, ".wgsl"))),+)
    };
}

const NOISE_SHADER: &str = shaders!("noise");
const CANDIDATE_SHADER: &str = shaders!("candidate");
const SAMPLE_SHADER: &str = shaders!("sample");
const SAMPLE_PLAIN: &str = shaders!("sample_plain");
const SAMPLE_FEATURES: &str = shaders!("sample_features");
const REDUCE_SHADER: &str = shaders!("candidate", "reduce");
const TOP_SHADER: &str = shaders!("candidate", "top");
const FINISH_SHADER: &str = shaders!("noise", "candidate", "finish");
const STREAM_SHADER: &str = shaders!("stream");
const NOISE_DEBUG_SHADER: &str = shaders!("noise", "noise_debug");

/// What pass 1 does between its matmul and its sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// Temperature only (shaders/sample_plain.wgsl).
    Plain = 0,
    /// Constraints before temperature, log-normaliser partials, top-N lists and the scaled logits
    /// of truncated rows (shaders/sample_features.wgsl).
    Features = 1,
}

impl Epilogue {
    fn source(self) -> &'static str {
        match self {
            Epilogue::Plain => SAMPLE_PLAIN,
            Epilogue::Features => SAMPLE_FEATURES,
        }
    }
}

pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The most bytes one storage binding may hold: the adapter's limits, or a test's lower cap.
    pub binding_limit: u64,
    /// Pass 1 per weight dtype (the shader's `DTYPE`: f32, bf16, f16), batch tile and epilogue,
    /// compiled on first use.
    sample: [[[OnceLock<wgpu::ComputePipeline>; 2]; BATCH_TILES.len()]; 3],
    pub sample_layout: wgpu::BindGroupLayout,
    /// Bind group 1 of the features epilogue.
    pub features_layout: wgpu::BindGroupLayout,
    pub reduce: wgpu::ComputePipeline,
    /// Pass 2's layout, shared by the top-N merge.
    pub reduce_layout: wgpu::BindGroupLayout,
    /// The top-N merge (shaders/top.wgsl), compiled on first use.
    top: OnceLock<wgpu::ComputePipeline>,
    /// Gumbel-max over truncated rows' survivors (shaders/finish.wgsl), compiled on first use.
    finish: OnceLock<wgpu::ComputePipeline>,
    pub finish_layout: wgpu::BindGroupLayout,
    pub noise_debug: wgpu::ComputePipeline,
    /// The read-only bandwidth stream.
    pub stream: wgpu::ComputePipeline,
    /// The core's Gumbel bounds by leading zeros of the noise word, uploaded once.
    pub bounds: wgpu::Buffer,
    /// Buffers reused across calls.
    pub workspace: Mutex<Workspace>,
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::Unavailable { backend: "wgpu".into(), reason: reason.into() }
}

pub(crate) fn device_error(what: impl std::fmt::Display) -> Error {
    Error::Device { backend: "wgpu".into(), what: what.to_string() }
}

impl Context {
    /// Opens the adapter the environment selects, with its limits lowered to `caps`.
    pub fn open(caps: Caps) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(&instance, None))
            .map_err(|e| unavailable(format!("no adapter: {e}")))?;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("flashsampling"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| unavailable(format!("no device on {}: {e}", adapter.get_info().name)))?;
        let sample_layout = bind_group_layout(&device, true, 4, 1);
        let features_layout = bind_group_layout(&device, false, 1, 2);
        let reduce_layout = bind_group_layout(&device, true, 1, 1);
        let finish_layout = bind_group_layout(&device, true, 2, 1);
        let reduce = pipeline(&device, REDUCE_SHADER, &[&reduce_layout], Indices::Checked);
        let noise_debug = pipeline(&device, NOISE_DEBUG_SHADER, &[], Indices::Checked);
        let stream = pipeline(&device, STREAM_SHADER, &[], Indices::Checked);
        let bounds = bounds_buffer(&device);
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(caps.binding_bytes.unwrap_or(u64::MAX));
        Ok(Context {
            device,
            queue,
            adapter_info: adapter.get_info(),
            limits,
            binding_limit,
            sample: Default::default(),
            sample_layout,
            features_layout,
            reduce,
            reduce_layout,
            top: OnceLock::new(),
            finish: OnceLock::new(),
            finish_layout,
            noise_debug,
            stream,
            bounds,
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// The pass-1 pipeline of `shape` and `epilogue`, compiled on first use, without naga's index
    /// clamps: every index of pass 1 is in range by construction (shaders/sample.wgsl's header),
    /// and the clamps in its multiply loop cost 10–15% at B = 16 on an H100 (docs/PERFORMANCE.md).
    pub fn sample_pipeline(&self, shape: SampleShape, epilogue: Epilogue) -> &wgpu::ComputePipeline {
        self.sample[shape.dtype][shape.batch_tile_index()][epilogue as usize].get_or_init(|| {
            let source = sample_source(shape, epilogue);
            let layouts: &[&wgpu::BindGroupLayout] = match epilogue {
                Epilogue::Plain => &[&self.sample_layout],
                Epilogue::Features => &[&self.sample_layout, &self.features_layout],
            };
            pipeline(&self.device, &source, layouts, Indices::InRangeByConstruction)
        })
    }

    /// The top-N merge, compiled on first use.
    pub fn top_pipeline(&self) -> &wgpu::ComputePipeline {
        self.top.get_or_init(|| pipeline(&self.device, TOP_SHADER, &[&self.reduce_layout], Indices::Checked))
    }

    /// The truncated rows' Gumbel-max, compiled on first use.
    pub fn finish_pipeline(&self) -> &wgpu::ComputePipeline {
        self.finish.get_or_init(|| pipeline(&self.device, FINISH_SHADER, &[&self.finish_layout], Indices::Checked))
    }

    /// Submits `encoder` and waits for the device to finish it.
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        let index = self.queue.submit([encoder.finish()]);
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map_err(device_error)?;
        Ok(())
    }

    /// Copies `bytes` bytes of `src` to the host.
    pub fn read_back(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let mut data = Vec::new();
        self.read_mapped(&staging, bytes, |mapped| data = mapped.to_vec())?;
        Ok(data)
    }

    /// Waits for the work submitted so far, maps the first `bytes` of `buffer` (a `MAP_READ`
    /// buffer) and hands them to `read`.
    pub fn read_mapped(&self, buffer: &wgpu::Buffer, bytes: u64, read: impl FnOnce(&[u8])) -> Result<()> {
        let slice = buffer.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).map_err(device_error)?;
        rx.recv().map_err(device_error)?.map_err(device_error)?;
        read(&slice.get_mapped_range().map_err(device_error)?);
        buffer.unmap();
        Ok(())
    }

    /// `(x, y)` workgroup counts numbering at least `groups` workgroups x-fastest within the
    /// per-dimension limit; the shaders skip those past `groups`.
    pub fn grid(&self, groups: usize) -> (u32, u32) {
        let max = self.limits.max_compute_workgroups_per_dimension as usize;
        (groups.min(max) as u32, groups.div_ceil(max) as u32)
    }

    /// Bytes between uniform slots of the workspace's params buffer.
    pub fn params_slot_bytes(&self) -> u64 {
        u64::from(self.limits.min_uniform_buffer_offset_alignment).max(64)
    }

    /// A storage buffer holding `contents` (at least 4 bytes, as bindings require).
    pub fn storage(&self, label: &str, contents: &[u8]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        let mut padded;
        let contents = if contents.len() % 4 != 0 || contents.is_empty() {
            padded = contents.to_vec();
            padded.resize(contents.len().div_ceil(4).max(1) * 4, 0);
            &padded[..]
        } else {
            contents
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        })
    }

    pub fn bind_group(
        &self,
        layout: &wgpu::BindGroupLayout,
        resources: &[wgpu::BindingResource<'_>],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry { binding: i as u32, resource: r.clone() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries })
    }
}

/// Binding 0 a uniform (with `uniform`), then `read_only` read-only storage bindings, then
/// `read_write` read-write ones: the layout of the passes and of the features epilogue's group,
/// made explicit so that every pass-1 variant shares bind groups.
fn bind_group_layout(device: &wgpu::Device, uniform: bool, read_only: u32, read_write: u32) -> wgpu::BindGroupLayout {
    let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let first = u32::from(uniform);
    let entries: Vec<_> = uniform
        .then(|| entry(0, wgpu::BufferBindingType::Uniform))
        .into_iter()
        .chain((first..first + read_only).map(|b| entry(b, wgpu::BufferBindingType::Storage { read_only: true })))
        .chain(
            (first + read_only..first + read_only + read_write)
                .map(|b| entry(b, wgpu::BufferBindingType::Storage { read_only: false })),
        )
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: None, entries: &entries })
}

/// The WGSL of pass 1 for `shape` and `epilogue`: its constants, then the shaders it includes.
pub(crate) fn sample_source(shape: SampleShape, epilogue: Epilogue) -> String {
    format!("{}{NOISE_SHADER}{CANDIDATE_SHADER}{SAMPLE_SHADER}{}", shape.wgsl_constants(), epilogue.source())
}

/// Whether naga guards a shader's array indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indices {
    /// Every index clamped into its array, as wgpu does by default.
    Checked,
    /// No index clamps: the shader's indices are in range by construction. Buffer accesses stay
    /// guarded where the driver guards them itself (Vulkan's robust buffer access).
    InRangeByConstruction,
}

/// A compute pipeline of `source`'s `main` over bind group `layouts` (none: the layout wgpu
/// derives from the shader).
fn pipeline(
    device: &wgpu::Device,
    source: &str,
    layouts: &[&wgpu::BindGroupLayout],
    indices: Indices,
) -> wgpu::ComputePipeline {
    // Every loop of these shaders ends (bounded by uniforms, constants or, in finish.wgsl, a row's
    // survivor count), so wgpu's loop counters, which keep drivers from unrolling the register-tile
    // loops, are left out.
    let checks = wgpu::ShaderRuntimeChecks {
        force_loop_bounding: false,
        bounds_checks: indices == Indices::Checked,
        ..wgpu::ShaderRuntimeChecks::checked()
    };
    // SAFETY: the shaders are this crate's own, their loops terminate, and those compiled without
    // index clamps index in range (their headers say why).
    let module = unsafe {
        device.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(source.into()) },
            checks,
        )
    };
    let bind_group_layouts: Vec<_> = layouts.iter().map(|&l| Some(l)).collect();
    let pipeline_layout = (!layouts.is_empty()).then(|| {
        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &bind_group_layouts,
            immediate_size: 0,
        })
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: pipeline_layout.as_ref(),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn bounds_buffer(device: &wgpu::Device) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    let bounds = flashsampling_core::noise::GumbelBounds::new();
    let values: Vec<f32> = (0..=32u32).map(|z| bounds.of_word(if z == 32 { 0 } else { 1u32 << (31 - z) })).collect();
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("gumbel bounds"),
        contents: bytemuck::cast_slice(&values),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

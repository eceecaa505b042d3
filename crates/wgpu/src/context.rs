//! The adapter, device and compiled pipelines of one backend instance.

use flashsampling_core::{Error, Result};

const SAMPLE_SHADER: &str =
    concat!(include_str!("../../../shaders/noise.wgsl"), include_str!("../../../shaders/sample.wgsl"));
const REDUCE_SHADER: &str = include_str!("../../../shaders/reduce.wgsl");
const NOISE_DEBUG_SHADER: &str =
    concat!(include_str!("../../../shaders/noise.wgsl"), include_str!("../../../shaders/noise_debug.wgsl"));

pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The most bytes one storage binding may hold: the adapter's limits, or a test's lower cap.
    pub binding_limit: u64,
    /// Pass 1 per weight dtype, indexed as the shader's `DTYPE`: f32, bf16, f16.
    pub sample: [wgpu::ComputePipeline; 3],
    pub reduce: wgpu::ComputePipeline,
    pub noise_debug: wgpu::ComputePipeline,
    /// The core's Gumbel bounds by leading zeros of the noise word, uploaded once.
    pub bounds: wgpu::Buffer,
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::Unavailable { backend: "wgpu".into(), reason: reason.into() }
}

pub(crate) fn device_error(what: impl std::fmt::Display) -> Error {
    Error::Device { backend: "wgpu".into(), what: what.to_string() }
}

impl Context {
    /// Opens the adapter the environment selects; `binding_cap` lowers the binding size (tests).
    pub fn open(binding_cap: Option<u64>) -> Result<Self> {
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
        let sample = [0.0, 1.0, 2.0].map(|dtype| pipeline(&device, SAMPLE_SHADER, &[("DTYPE", dtype)]));
        let reduce = pipeline(&device, REDUCE_SHADER, &[]);
        let noise_debug = pipeline(&device, NOISE_DEBUG_SHADER, &[]);
        let bounds = bounds_buffer(&device);
        let binding_limit =
            limits.max_storage_buffer_binding_size.min(limits.max_buffer_size).min(binding_cap.unwrap_or(u64::MAX));
        Ok(Context {
            device,
            queue,
            adapter_info: adapter.get_info(),
            limits,
            binding_limit,
            sample,
            reduce,
            noise_debug,
            bounds,
        })
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
        self.submit_and_wait(encoder)?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).map_err(device_error)?;
        rx.recv().map_err(device_error)?.map_err(device_error)?;
        let data = slice.get_mapped_range().map_err(device_error)?.to_vec();
        staging.unmap();
        Ok(data)
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

    pub fn uniform(&self, contents: &[u8]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents,
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    pub fn bind_group(&self, pipeline: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }
}

fn pipeline(device: &wgpu::Device, source: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
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

//! What a Vulkan driver makes of pass 1's compute shader: the statistics it reports through
//! `VK_KHR_pipeline_executable_properties` (registers, spills, shared memory, instruction counts,
//! whatever the driver offers) and its internal representations (IR or assembly dumps).
//!
//! The WGSL (`sample_shader_source` for each dtype and batch, or `--wgsl` files with an entry point
//! `main`) goes to SPIR-V through naga with the options wgpu-hal 30's Vulkan backend picks on the
//! same device, with the backend's runtime checks (bounds checks on, loop bounding off), so the
//! driver compiles what it compiles under the backend.
//!
//! ```text
//! cargo run -p flashsampling-wgpu --example pipeline_stats -- \
//!     [--dtype bf16,f32] [--batches 1,4,16] [--wgsl FILE...] [--out DIR] [--spirv-only]
//! ```
//!
//! Defaults: bf16, batches 1, 4 and 16; with `--wgsl` and neither `--dtype` nor `--batches`, only the
//! files. Statistics go to stdout; the SPIR-V and the internal representations to files in `--out`
//! (default: the current directory). `WGPU_ADAPTER_NAME` picks the device by a substring of its name,
//! as for wgpu; otherwise a discrete GPU is preferred. `--spirv-only` writes the SPIR-V that a
//! Vulkan 1.3 device with `robustBufferAccess2` (such as the H100) gets, without opening a device.
//!
//! On a GPU machine without a Rust toolchain (the H100), build here with
//! `cargo build --release --example pipeline_stats -p flashsampling-wgpu`, copy
//! `target/release/examples/pipeline_stats` there and run it: it needs only the Vulkan loader and
//! driver. Exit status: 0, 2 if the device lacks the extension, 1 on any other failure.
//!
//! NVIDIA's driver 580 reports "Local Memory Size" plus 2^36 (68719476736 means none): a value
//! above that is local memory per invocation, the sign of an array the driver could not keep in
//! registers (docs/PERFORMANCE.md, eleventh session).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ash::vk;
use flashsampling_core::DType;
use naga::back::spv;
use naga::proc::BoundsCheckPolicy::{Restrict, Unchecked};

/// Why the tool stopped: the device cannot report (exit status 2), or anything else failed.
enum Failure {
    Unsupported(String),
    Error(String),
}

type Result<T> = std::result::Result<T, Failure>;

fn fail(what: impl std::fmt::Display) -> Failure {
    Failure::Error(what.to_string())
}

fn vk_fail(call: &'static str) -> impl FnOnce(vk::Result) -> Failure {
    move |e| fail(format!("{call} failed: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unsupported(why)) => {
            eprintln!("pipeline_stats: {why}");
            ExitCode::from(2)
        }
        Err(Failure::Error(why)) => {
            eprintln!("pipeline_stats: error: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse()?;
    std::fs::create_dir_all(&args.out).map_err(|e| fail(format!("creating {}: {e}", args.out.display())))?;
    // Every shader is validated first, so that a bad one fails before any device work.
    let shaders = args.shaders()?;
    let parsed = shaders.iter().map(Parsed::new).collect::<Result<Vec<_>>>()?;
    if args.spirv_only {
        return parsed.iter().try_for_each(|p| p.spirv(Target::H100, &args.out).map(drop));
    }
    let gpu = Gpu::open()?;
    parsed.iter().try_for_each(|p| gpu.inspect(p, &args.out))
}

/// A shader to inspect: a name for its output and its WGSL.
struct Shader {
    name: String,
    source: String,
}

struct Args {
    dtypes: Option<Vec<DType>>,
    batches: Option<Vec<usize>>,
    files: Vec<PathBuf>,
    out: PathBuf,
    spirv_only: bool,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut args = Args { dtypes: None, batches: None, files: Vec::new(), out: ".".into(), spirv_only: false };
        let mut argv = std::env::args().skip(1).peekable();
        while let Some(arg) = argv.next() {
            let mut value = || argv.next().ok_or_else(|| fail(format!("{arg} needs a value")));
            match arg.as_str() {
                "--dtype" => args.dtypes = Some(list(&value()?, |s| s.parse::<DType>().map_err(fail))?),
                "--batches" => {
                    args.batches = Some(list(&value()?, |s| s.parse().map_err(|e| fail(format!("batch {s:?}: {e}"))))?)
                }
                "--out" => args.out = value()?.into(),
                "--spirv-only" => args.spirv_only = true,
                "--wgsl" => {
                    args.files.extend(std::iter::from_fn(|| argv.next_if(|a| !a.starts_with("--")).map(Into::into)))
                }
                other => return Err(fail(format!("unknown argument {other:?} (see the doc comment of {})", file!()))),
            }
        }
        Ok(args)
    }

    /// Pass 1 for each dtype and batch (unless only files were asked for), then the files.
    fn shaders(&self) -> Result<Vec<Shader>> {
        let mut shaders = Vec::new();
        if self.files.is_empty() || self.dtypes.is_some() || self.batches.is_some() {
            for &dtype in self.dtypes.as_deref().unwrap_or(&[DType::Bf16]) {
                for &batch in self.batches.as_deref().unwrap_or(&[1, 4, 16]) {
                    let source = flashsampling_wgpu::sample_shader_source(dtype, batch);
                    shaders.push(Shader { name: format!("sample_{}_b{batch}", dtype.name()), source });
                }
            }
        }
        for file in &self.files {
            let source = std::fs::read_to_string(file).map_err(|e| fail(format!("reading {}: {e}", file.display())))?;
            let name = file.file_stem().map_or("shader".into(), |s| s.to_string_lossy().into_owned());
            shaders.push(Shader { name, source });
        }
        Ok(shaders)
    }
}

fn list<T>(values: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    values.split(',').map(|v| parse(v.trim())).collect()
}

/// The device's version and the features wgpu-hal enables that change the SPIR-V or what the driver
/// makes of it, found and enabled as wgpu-hal's Vulkan adapter does.
#[derive(Clone, Copy)]
struct Target {
    api_version: u32,
    /// `VK_EXT_robustness2`.
    robustness2: bool,
    robust_buffer_access: bool,
    robust_buffer_access2: bool,
    zero_init: bool,
}

impl Target {
    /// A Vulkan 1.3 device with `robustBufferAccess2`, such as the H100.
    const H100: Target = Target {
        api_version: vk::API_VERSION_1_3,
        robustness2: true,
        robust_buffer_access: true,
        robust_buffer_access2: true,
        zero_init: true,
    };

    /// wgpu-hal 30's options (`Adapter::open`, `Device::compile_stage`) under our runtime checks.
    fn spv_options(self) -> spv::Options<'static> {
        spv::Options {
            lang_version: match vk::api_version_minor(self.api_version) {
                0 => (1, 0),
                1 => (1, 3),
                2 => (1, 5),
                _ => (1, 6),
            },
            // As in release builds (no DEBUG instance flag); the other two do not touch compute code.
            flags: spv::WriterFlags::LABEL_VARYINGS | spv::WriterFlags::FORCE_POINT_SIZE,
            // wgpu lists the device's capabilities, which can only reject a module, never change it.
            capabilities: None,
            bounds_check_policies: naga::proc::BoundsCheckPolicies {
                index: Restrict,
                // The driver checks buffer accesses itself under robustBufferAccess2.
                buffer: if self.robust_buffer_access2 { Unchecked } else { Restrict },
                image_load: Restrict,
                binding_array: Unchecked,
            },
            zero_initialize_workgroup_memory: if self.zero_init {
                spv::ZeroInitializeWorkgroupMemoryMode::Native
            } else {
                spv::ZeroInitializeWorkgroupMemoryMode::Polyfill
            },
            force_loop_bounding: false,
            fake_missing_bindings: false,
            use_storage_input_output_16: false,
            ..spv::Options::default()
        }
    }

    /// What `physical` supports; unsupported without the pipeline executable info feature.
    fn query(instance: &Instance, physical: vk::PhysicalDevice, api_version: u32, robustness2: bool) -> Result<Self> {
        let mut executable_info = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
        let mut robust2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default();
        let mut zero_init = vk::PhysicalDeviceZeroInitializeWorkgroupMemoryFeatures::default();
        let mut features = vk::PhysicalDeviceFeatures2::default().push_next(&mut executable_info);
        if robustness2 {
            features = features.push_next(&mut robust2);
        }
        if api_version >= vk::API_VERSION_1_3 {
            features = features.push_next(&mut zero_init);
        }
        // SAFETY: `physical` comes from this instance and the chained structs outlive the call.
        unsafe { instance.raw.get_physical_device_features2(physical, &mut features) };
        let robust_buffer_access = features.features.robust_buffer_access == vk::TRUE;
        if executable_info.pipeline_executable_info != vk::TRUE {
            return Err(Failure::Unsupported("the device lacks the pipelineExecutableInfo feature".into()));
        }
        Ok(Target {
            api_version,
            robustness2,
            robust_buffer_access,
            robust_buffer_access2: robust2.robust_buffer_access2 == vk::TRUE,
            zero_init: zero_init.shader_zero_initialize_workgroup_memory == vk::TRUE,
        })
    }

    /// A device with these features, pipeline executable info and one compute queue (unused: nothing runs).
    fn create_device(self, instance: &Instance, physical: vk::PhysicalDevice) -> Result<ash::Device> {
        let mut executable_info =
            vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default().pipeline_executable_info(true);
        let mut robust2 =
            vk::PhysicalDeviceRobustness2FeaturesEXT::default().robust_buffer_access2(self.robust_buffer_access2);
        let mut zero_init = vk::PhysicalDeviceZeroInitializeWorkgroupMemoryFeatures::default()
            .shader_zero_initialize_workgroup_memory(true);
        let core = vk::PhysicalDeviceFeatures::default().robust_buffer_access(self.robust_buffer_access);
        let mut features = vk::PhysicalDeviceFeatures2::default().features(core).push_next(&mut executable_info);
        let mut extensions = vec![ash::khr::pipeline_executable_properties::NAME.as_ptr()];
        if self.robustness2 {
            features = features.push_next(&mut robust2);
            extensions.push(ash::ext::robustness2::NAME.as_ptr());
        }
        if self.zero_init {
            features = features.push_next(&mut zero_init);
        }
        // SAFETY: `physical` comes from this instance.
        let families = unsafe { instance.raw.get_physical_device_queue_family_properties(physical) };
        let family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .ok_or_else(|| fail("the device has no compute queue"))?;
        let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(family as u32).queue_priorities(&[1.0])];
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&extensions)
            .push_next(&mut features);
        // SAFETY: everything `info` points to outlives the call; the features were reported as supported.
        unsafe { instance.raw.create_device(physical, &info, None) }.map_err(vk_fail("vkCreateDevice"))
    }
}

/// A shader's validated naga module.
struct Parsed<'a> {
    shader: &'a Shader,
    module: naga::Module,
    info: naga::valid::ModuleInfo,
    layout: Layout,
}

impl<'a> Parsed<'a> {
    fn new(shader: &'a Shader) -> Result<Self> {
        let error = |e: String| fail(format!("{}: {e}", shader.name));
        let module =
            naga::front::wgsl::parse_str(&shader.source).map_err(|e| error(e.emit_to_string(&shader.source)))?;
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        let info = validator.validate(&module).map_err(|e| error(e.emit_to_string(&shader.source)))?;
        let layout = Layout::new(&module).map_err(error)?;
        Ok(Parsed { shader, module, info, layout })
    }

    /// The SPIR-V of `main` for `target`, also written to `out`.
    fn spirv(&self, target: Target, out: &Path) -> Result<Vec<u32>> {
        let pipeline = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
        let options = spv::Options { binding_map: self.layout.binding_map.clone(), ..target.spv_options() };
        let words = spv::write_vec(&self.module, &self.info, &options, Some(&pipeline))
            .map_err(|e| fail(format!("{}: SPIR-V: {e}", self.shader.name)))?;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        write(&out.join(format!("{}.spv", self.shader.name)), &bytes)?;
        Ok(words)
    }
}

/// The descriptor set layouts' bindings, by set, and the bindings of the WGSL in them.
struct Layout {
    sets: Vec<Vec<vk::DescriptorSetLayoutBinding<'static>>>,
    binding_map: spv::BindingMap,
}

impl Layout {
    /// The layout of `module`'s buffers (others are not supported), as wgpu-hal lays out bind groups:
    /// one set per group, numbered by group, with a set's Vulkan bindings numbered in the order of the
    /// WGSL ones.
    fn new(module: &naga::Module) -> std::result::Result<Self, String> {
        let mut groups: BTreeMap<u32, BTreeMap<u32, vk::DescriptorType>> = BTreeMap::new();
        for (_, var) in module.global_variables.iter() {
            let Some(binding) = &var.binding else { continue };
            let ty = match var.space {
                naga::AddressSpace::Uniform => vk::DescriptorType::UNIFORM_BUFFER,
                naga::AddressSpace::Storage { .. } => vk::DescriptorType::STORAGE_BUFFER,
                other => return Err(format!("{other:?} bindings are not supported")),
            };
            groups.entry(binding.group).or_default().insert(binding.binding, ty);
        }
        let mut layout = Layout { sets: Vec::new(), binding_map: spv::BindingMap::new() };
        // Groups the shader skips still take their place in the pipeline layout, as empty sets.
        for group in 0..groups.keys().next_back().map_or(0, |&group| group + 1) {
            let bindings = groups.remove(&group).unwrap_or_default();
            let set = (0u32..).zip(bindings).map(|(vk_binding, (binding, ty))| {
                let info = spv::BindingInfo { descriptor_set: group, binding: vk_binding, binding_array_size: None };
                layout.binding_map.insert(naga::ResourceBinding { group, binding }, info);
                vk::DescriptorSetLayoutBinding::default()
                    .binding(vk_binding)
                    .descriptor_type(ty)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            });
            layout.sets.push(set.collect());
        }
        Ok(layout)
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
    println!("  wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn c_str(name: std::result::Result<&CStr, std::ffi::FromBytesUntilNulError>) -> String {
    name.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The loaded Vulkan library and an instance of it.
struct Instance {
    _entry: ash::Entry,
    raw: ash::Instance,
    api_version: u32,
}

impl Instance {
    fn new() -> Result<Self> {
        // SAFETY: loading the system's Vulkan loader runs its initialisation, which we trust.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| {
            fail(format!("cannot load the Vulkan library (no Vulkan loader or driver installed?): {e}"))
        })?;
        // SAFETY: `entry` holds a loaded Vulkan library.
        let version = unsafe { entry.try_enumerate_instance_version() }
            .map_err(vk_fail("vkEnumerateInstanceVersion"))?
            .unwrap_or(vk::API_VERSION_1_0);
        let api_version = if version >= vk::API_VERSION_1_3 { vk::API_VERSION_1_3 } else { vk::API_VERSION_1_1 };
        let app = vk::ApplicationInfo::default().application_name(c"pipeline_stats").api_version(api_version);
        // SAFETY: the create info and the application info it points to outlive the call.
        let raw = unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None) }
            .map_err(vk_fail("vkCreateInstance"))?;
        Ok(Instance { _entry: entry, raw, api_version })
    }

    /// The device `WGPU_ADAPTER_NAME` names (case-insensitive substring), else the first discrete GPU, else
    /// the first device.
    fn pick(&self) -> Result<(vk::PhysicalDevice, vk::PhysicalDeviceProperties)> {
        // SAFETY: `raw` is a live instance.
        let devices =
            unsafe { self.raw.enumerate_physical_devices() }.map_err(vk_fail("vkEnumeratePhysicalDevices"))?;
        let wanted = std::env::var("WGPU_ADAPTER_NAME").ok().map(|name| name.to_lowercase());
        devices
            .into_iter()
            // SAFETY: the physical devices come from this instance.
            .map(|device| (device, unsafe { self.raw.get_physical_device_properties(device) }))
            .filter(|(_, props)| {
                wanted.as_ref().is_none_or(|w| c_str(props.device_name_as_c_str()).to_lowercase().contains(w))
            })
            .min_by_key(|(_, props)| props.device_type != vk::PhysicalDeviceType::DISCRETE_GPU)
            .ok_or_else(|| match wanted {
                Some(w) => fail(format!("no Vulkan device's name contains {w:?} (WGPU_ADAPTER_NAME)")),
                None => fail("no Vulkan device found"),
            })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the instance's only child, the logical device, is destroyed first (`Gpu::drop`).
        unsafe { self.raw.destroy_instance(None) };
    }
}

/// A logical device that reports on its pipelines.
struct Gpu {
    device: ash::Device,
    executables: ash::khr::pipeline_executable_properties::Device,
    target: Target,
    /// Dropped after `Gpu::drop` has destroyed the device.
    _instance: Instance,
}

impl Gpu {
    fn open() -> Result<Self> {
        let instance = Instance::new()?;
        let (physical, props) = instance.pick()?;
        let name = c_str(props.device_name_as_c_str());
        let api_version = props.api_version.min(instance.api_version);
        println!(
            "device: {name} (Vulkan {}.{})",
            vk::api_version_major(api_version),
            vk::api_version_minor(api_version)
        );
        // SAFETY: `physical` comes from this instance.
        let extensions = unsafe { instance.raw.enumerate_device_extension_properties(physical) }
            .map_err(vk_fail("vkEnumerateDeviceExtensionProperties"))?;
        let has = |ext: &CStr| extensions.iter().any(|e| e.extension_name_as_c_str() == Ok(ext));
        let executable_ext = ash::khr::pipeline_executable_properties::NAME;
        if !has(executable_ext) {
            return Err(Failure::Unsupported(format!("{name} does not support {executable_ext:?}: nothing to report")));
        }
        let target = Target::query(&instance, physical, api_version, has(ash::ext::robustness2::NAME))?;
        let device = target.create_device(&instance, physical)?;
        let executables = ash::khr::pipeline_executable_properties::Device::new(&instance.raw, &device);
        Ok(Gpu { device, executables, target, _instance: instance })
    }

    /// Compiles `parsed`'s pipeline, prints its statistics and writes its representations to `out`.
    fn inspect(&self, parsed: &Parsed, out: &Path) -> Result<()> {
        println!("== {}", parsed.shader.name);
        let words = parsed.spirv(self.target, out)?;
        let mut objects = Objects::default();
        let result = self.build(parsed, &words, &mut objects).and_then(|pipeline| self.report(parsed, pipeline, out));
        objects.destroy(&self.device);
        result
    }

    fn build(&self, parsed: &Parsed, words: &[u32], objects: &mut Objects) -> Result<vk::Pipeline> {
        for bindings in &parsed.layout.sets {
            let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(bindings);
            // SAFETY: `info` and its bindings outlive the call.
            let layout = unsafe { self.device.create_descriptor_set_layout(&info, None) }
                .map_err(vk_fail("vkCreateDescriptorSetLayout"))?;
            objects.set_layouts.push(layout);
        }
        let info = vk::PipelineLayoutCreateInfo::default().set_layouts(&objects.set_layouts);
        // SAFETY: the set layouts are live objects of this device.
        objects.pipeline_layout =
            unsafe { self.device.create_pipeline_layout(&info, None) }.map_err(vk_fail("vkCreatePipelineLayout"))?;
        // SAFETY: `words` is SPIR-V from naga's writer.
        objects.module =
            unsafe { self.device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(words), None) }
                .map_err(vk_fail("vkCreateShaderModule"))?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(objects.module)
            .name(c"main");
        let info = vk::ComputePipelineCreateInfo::default()
            .flags(
                vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR
                    | vk::PipelineCreateFlags::CAPTURE_INTERNAL_REPRESENTATIONS_KHR,
            )
            .stage(stage)
            .layout(objects.pipeline_layout);
        // SAFETY: the module and layout are live objects of this device; its features enable the capture flags.
        let pipelines = unsafe { self.device.create_compute_pipelines(vk::PipelineCache::null(), &[info], None) }
            .map_err(|(_, e)| vk_fail("vkCreateComputePipelines")(e))?;
        objects.pipeline = pipelines[0];
        Ok(objects.pipeline)
    }

    fn report(&self, parsed: &Parsed, pipeline: vk::Pipeline, out: &Path) -> Result<()> {
        // SAFETY: `pipeline` is a live pipeline of this device, created with CAPTURE_STATISTICS_KHR.
        let executables = unsafe {
            self.executables.get_pipeline_executable_properties(&vk::PipelineInfoKHR::default().pipeline(pipeline))
        }
        .map_err(vk_fail("vkGetPipelineExecutablePropertiesKHR"))?;
        for (index, executable) in (0u32..).zip(&executables) {
            println!(
                "-- executable {index}: {} ({:?}, subgroup size {}): {}",
                c_str(executable.name_as_c_str()),
                executable.stages,
                executable.subgroup_size,
                c_str(executable.description_as_c_str()),
            );
            let info = vk::PipelineExecutableInfoKHR::default().pipeline(pipeline).executable_index(index);
            self.print_statistics(&info)?;
            let prefix = format!("{}.{index}", parsed.shader.name);
            for (name, is_text, data) in self.representations(&info)? {
                let file_name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                write(&out.join(format!("{prefix}.{file_name}.{}", if is_text { "txt" } else { "bin" })), &data)?;
            }
        }
        Ok(())
    }

    fn print_statistics(&self, info: &vk::PipelineExecutableInfoKHR) -> Result<()> {
        // SAFETY: `info` names an executable of a live pipeline created with CAPTURE_STATISTICS_KHR.
        let statistics = unsafe { self.executables.get_pipeline_executable_statistics(info) }
            .map_err(vk_fail("vkGetPipelineExecutableStatisticsKHR"))?;
        for stat in &statistics {
            let description = c_str(stat.description_as_c_str());
            println!("  {:<32} {:>14}  {description}", c_str(stat.name_as_c_str()), statistic_value(stat));
        }
        Ok(())
    }

    /// Each internal representation's name, whether it is text, and its data (text without its NUL).
    fn representations(&self, info: &vk::PipelineExecutableInfoKHR) -> Result<Vec<(String, bool, Vec<u8>)>> {
        // SAFETY: as for the statistics; these calls leave `p_data` null, so the driver fills in the sizes.
        let mut reprs = unsafe { self.executables.get_pipeline_executable_internal_representations(info) }
            .map_err(vk_fail("vkGetPipelineExecutableInternalRepresentationsKHR"))?;
        let mut buffers: Vec<Vec<u8>> = reprs.iter().map(|r| vec![0; r.data_size]).collect();
        for (repr, buffer) in reprs.iter_mut().zip(&mut buffers) {
            repr.p_data = buffer.as_mut_ptr().cast();
        }
        let mut count = reprs.len() as u32;
        let fetch = self.executables.fp().get_pipeline_executable_internal_representations_khr;
        // SAFETY: `count` structs, each with `p_data` pointing to `data_size` writable bytes that outlive the call.
        unsafe { fetch(self.executables.device(), info, &mut count, reprs.as_mut_ptr()) }
            .result()
            .map_err(vk_fail("vkGetPipelineExecutableInternalRepresentationsKHR"))?;
        Ok(reprs
            .iter()
            .zip(buffers)
            .map(|(repr, mut data)| {
                data.truncate(repr.data_size);
                if repr.is_text == vk::TRUE {
                    data.truncate(data.iter().position(|&b| b == 0).unwrap_or(data.len()));
                }
                (c_str(repr.name_as_c_str()), repr.is_text == vk::TRUE, data)
            })
            .collect())
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every object made on the device was destroyed (`Objects::destroy`) and none is in use.
        unsafe { self.device.destroy_device(None) };
    }
}

fn statistic_value(stat: &vk::PipelineExecutableStatisticKHR) -> String {
    // SAFETY: `format` says which member of the union the driver wrote.
    unsafe {
        match stat.format {
            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => (stat.value.b32 == vk::TRUE).to_string(),
            vk::PipelineExecutableStatisticFormatKHR::INT64 => stat.value.i64.to_string(),
            vk::PipelineExecutableStatisticFormatKHR::UINT64 => stat.value.u64.to_string(),
            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => format!("{:.3}", stat.value.f64),
            other => format!("({other:?})"),
        }
    }
}

/// The Vulkan objects of one shader's pipeline; null handles, for objects not made, are no-ops to destroy.
#[derive(Default)]
struct Objects {
    set_layouts: Vec<vk::DescriptorSetLayout>,
    pipeline_layout: vk::PipelineLayout,
    module: vk::ShaderModule,
    pipeline: vk::Pipeline,
}

impl Objects {
    fn destroy(&self, device: &ash::Device) {
        // SAFETY: the objects belong to `device` and no work uses them (nothing was submitted).
        unsafe {
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_shader_module(self.module, None);
            device.destroy_pipeline_layout(self.pipeline_layout, None);
            for &layout in &self.set_layouts {
                device.destroy_descriptor_set_layout(layout, None);
            }
        }
    }
}

//! The device's own memory bandwidth, for the benchmark's floor (DESIGN.md §6), measured both ways
//! over one buffer far larger than any cache: a read-only stream (shaders/stream.wgsl) and a
//! buffer copy (bytes read plus written). Timed from the host over batches long enough that
//! submission costs nothing; the best of a few batches.

use std::time::Instant;

use flashsampling_core::Result;

use crate::context::Context;

/// Bytes per pass: far larger than any cache; smaller on a CPU adapter, where the device's memory
/// is the host's and a large pass only takes long.
const GPU_BYTES: u64 = 1 << 30;
const CPU_BYTES: u64 = 1 << 26;
const PASSES_PER_BATCH: usize = 10;
const BATCHES: usize = 3;
/// Workgroups of the stream: enough to fill any GPU, each folding many words.
const STREAM_GROUPS: u32 = 4096;

/// Bytes per second of the device's memory.
#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    /// Read by the read-only stream.
    pub read: f64,
    /// Read plus written by `copy_buffer_to_buffer`.
    pub copy: f64,
}

pub(crate) fn measure(ctx: &Context) -> Result<Bandwidth> {
    let wanted = if ctx.adapter_info.device_type == wgpu::DeviceType::Cpu { CPU_BYTES } else { GPU_BYTES };
    let bytes = wanted.min(ctx.binding_limit) & !15;
    let buffer = |usage| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bandwidth"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    use wgpu::BufferUsages as U;
    let src = buffer(U::STORAGE | U::COPY_SRC | U::COPY_DST);
    let dst = buffer(U::COPY_DST);
    // Never time zeros, which a driver may shortcut.
    let words: Vec<u32> = (0..(bytes / 4) as u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
    ctx.queue.write_buffer(&src, 0, bytemuck::cast_slice(&words));
    drop(words);
    let sink = ctx.storage("bandwidth sink", &[0; 4]);
    let group =
        ctx.bind_group(&ctx.stream.get_bind_group_layout(0), &[src.as_entire_binding(), sink.as_entire_binding()]);
    let read = best_rate(ctx, bytes, |encoder| {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&ctx.stream);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(STREAM_GROUPS, 1, 1);
    })?;
    let copy = best_rate(ctx, 2 * bytes, |encoder| encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes))?;
    Ok(Bandwidth { read, copy })
}

/// Bytes per second of `pass`, which moves `bytes`: best of `BATCHES` batches after a warm-up.
fn best_rate(ctx: &Context, bytes: u64, mut pass: impl FnMut(&mut wgpu::CommandEncoder)) -> Result<f64> {
    let mut batch = |passes: usize| -> Result<f64> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..passes {
            pass(&mut encoder);
        }
        let start = Instant::now();
        ctx.submit_and_wait(encoder)?;
        Ok(start.elapsed().as_secs_f64())
    };
    batch(1)?;
    let mut best = f64::INFINITY;
    for _ in 0..BATCHES {
        best = best.min(batch(PASSES_PER_BATCH)?);
    }
    Ok(bytes as f64 * PASSES_PER_BATCH as f64 / best)
}

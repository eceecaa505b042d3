//! An LM head resident on the device: `W` uploaded once, its rows padded to 16 bytes (the shader
//! reads `vec4<u32>` words), split by rows over as many buffers as the binding-size limit needs.

use std::sync::Mutex;

use flashsampling_core::{DType, Error, LmHeadRef, Result};

use crate::context::Context;
use crate::shape::{ROW_ALIGN, TILE};
use crate::workspace::Workspace;

/// One binding's worth of weight rows.
pub(crate) struct Chunk {
    pub buffer: wgpu::Buffer,
    /// First shard-local row held.
    pub first_row: usize,
    pub rows: usize,
}

pub(crate) struct ResidentHead {
    pub chunks: Vec<Chunk>,
    /// The shader's `DTYPE` for these weights.
    pub dtype: usize,
    /// `vec4<u32>` words per padded row.
    pub words_per_row: usize,
    /// Pass-1 bind groups per chunk, and the workspace generation they were made for.
    bind_groups: Mutex<Option<(u64, Vec<wgpu::BindGroup>)>>,
}

pub(crate) fn dtype_index(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 0,
        DType::Bf16 => 1,
        DType::F16 => 2,
    }
}

/// The most rows one binding holds: within the binding and buffer limits.
pub(crate) fn rows_per_chunk(ctx: &Context, row_bytes: usize) -> usize {
    (ctx.binding_limit / row_bytes as u64) as usize
}

pub(crate) fn upload(ctx: &Context, head: &LmHeadRef<'_>) -> Result<ResidentHead> {
    let elem = head.weights.dtype().size();
    let row_bytes = head.dim * elem;
    let padded = row_bytes.next_multiple_of(ROW_ALIGN);
    let per_chunk = rows_per_chunk(ctx, padded);
    if per_chunk == 0 {
        return Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!("a weight row of {padded} bytes exceeds the adapter's binding size"),
        });
    }
    let bytes = head.weights.as_bytes();
    let chunks = (0..head.rows)
        .step_by(per_chunk)
        .map(|first_row| {
            let rows = per_chunk.min(head.rows - first_row);
            let data = &bytes[first_row * row_bytes..(first_row + rows) * row_bytes];
            let buffer = if padded == row_bytes {
                ctx.storage("weights", data)
            } else {
                let mut rows_padded = vec![0u8; rows * padded];
                for (to, from) in rows_padded.chunks_exact_mut(padded).zip(data.chunks_exact(row_bytes)) {
                    to[..row_bytes].copy_from_slice(from);
                }
                ctx.storage("weights", &rows_padded)
            };
            Chunk { buffer, first_row, rows }
        })
        .collect();
    Ok(ResidentHead {
        chunks,
        dtype: dtype_index(head.weights.dtype()),
        words_per_row: padded / ROW_ALIGN,
        bind_groups: Mutex::new(None),
    })
}

impl ResidentHead {
    /// Pass-1 tiles over every binding.
    pub fn tiles(&self) -> usize {
        self.chunks.iter().map(|c| c.rows.div_ceil(TILE)).sum()
    }

    /// Pass 1's bind group per chunk over the workspace's current buffers (chunk `i` takes uniform
    /// slot `i + 1`).
    pub fn bind_groups(&self, ctx: &Context, ws: &Workspace, params_bytes: u64) -> Vec<wgpu::BindGroup> {
        let mut cached = self.bind_groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((generation, groups)) = cached.as_ref() {
            if *generation == ws.generation {
                return groups.clone();
            }
        }
        let groups: Vec<_> = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                ctx.bind_group(
                    &ctx.sample_layout,
                    &[
                        ws.params_slot(ctx, i + 1, params_bytes),
                        chunk.buffer.as_entire_binding(),
                        ws.hidden.get().as_entire_binding(),
                        ws.rows.get().as_entire_binding(),
                        ctx.bounds.as_entire_binding(),
                        ws.partial.get().as_entire_binding(),
                    ],
                )
            })
            .collect();
        *cached = Some((ws.generation, groups.clone()));
        groups
    }
}

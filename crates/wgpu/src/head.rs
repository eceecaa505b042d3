//! An LM head resident on the device: `W` uploaded once, split by rows over as many buffers as the
//! adapter's binding-size limit needs.

use flashsampling_core::{DType, Error, LmHeadRef, Result};

use crate::context::Context;

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
}

pub(crate) fn dtype_index(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 0,
        DType::Bf16 => 1,
        DType::F16 => 2,
    }
}

/// The most rows one binding holds: within the binding and buffer limits, a whole number of `u32`
/// words (even for 16-bit dtypes), and few enough tiles for one dispatch dimension.
pub(crate) fn rows_per_chunk(ctx: &Context, dim: usize, elem: usize) -> usize {
    let by_bytes = (ctx.binding_limit / (dim * elem) as u64) as usize;
    let by_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize * crate::launch::TILE;
    let rows = by_bytes.min(by_dispatch);
    if elem < 4 {
        rows & !1
    } else {
        rows
    }
}

pub(crate) fn upload(ctx: &Context, head: &LmHeadRef<'_>) -> Result<ResidentHead> {
    let elem = head.weights.dtype().size();
    let per_chunk = rows_per_chunk(ctx, head.dim, elem);
    if per_chunk == 0 {
        return Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!("a weight row of {} bytes exceeds the adapter's binding size", head.dim * elem),
        });
    }
    let bytes = head.weights.as_bytes();
    let row_bytes = head.dim * elem;
    let chunks = (0..head.rows)
        .step_by(per_chunk)
        .map(|first_row| {
            let rows = per_chunk.min(head.rows - first_row);
            let data = &bytes[first_row * row_bytes..(first_row + rows) * row_bytes];
            Chunk { buffer: ctx.storage("weights", data), first_row, rows }
        })
        .collect();
    Ok(ResidentHead { chunks, dtype: dtype_index(head.weights.dtype()) })
}

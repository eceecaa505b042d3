//! The noise of the shaders for given queries, so tests can compare it with the core's.

use flashsampling_core::Result;

use crate::context::Context;

/// One `(seed, offset, sample, token)` to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct NoiseQuery {
    pub seed: u64,
    pub offset: u64,
    pub sample: u32,
    pub token: u32,
}

pub(crate) fn noise(ctx: &Context, queries: &[NoiseQuery]) -> Result<Vec<(u32, f32)>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let words: Vec<u32> = queries
        .iter()
        .flat_map(|q| {
            [q.seed as u32, (q.seed >> 32) as u32, q.offset as u32, (q.offset >> 32) as u32, q.sample, q.token, 0, 0]
        })
        .collect();
    let input = ctx.storage("noise queries", bytemuck::cast_slice(&words));
    let results = ctx.storage("noise results", &vec![0u8; queries.len() * 8]);
    let group = ctx.bind_group(
        &ctx.noise_debug.get_bind_group_layout(0),
        &[input.as_entire_binding(), results.as_entire_binding()],
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&ctx.noise_debug);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(queries.len().div_ceil(64) as u32, 1, 1);
    }
    ctx.submit_and_wait(encoder)?;
    let bytes = ctx.read_back(&results, (queries.len() * 8) as u64)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let word = u32::from_le_bytes(c[0..4].try_into().expect("4 bytes"));
            let g = u32::from_le_bytes(c[4..8].try_into().expect("4 bytes"));
            (word, f32::from_bits(g))
        })
        .collect())
}

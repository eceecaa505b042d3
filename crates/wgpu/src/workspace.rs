//! Buffers reused across calls: grown when a call needs more, never shrunk, so that a call of a
//! shape seen before creates no buffer and no bind group.

use crate::context::Context;

/// Bytes each buffer of one call needs.
pub(crate) struct Sizes {
    pub hidden: u64,
    pub rows: u64,
    pub params: u64,
    pub partial: u64,
    pub out: u64,
}

/// One grow-only buffer.
#[derive(Default)]
pub(crate) struct Grown(Option<wgpu::Buffer>);

impl Grown {
    /// Makes the buffer at least `bytes` long; true when it was (re)created.
    fn reserve(&mut self, ctx: &Context, label: &str, usage: wgpu::BufferUsages, bytes: u64) -> bool {
        let bytes = bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        if self.0.as_ref().is_some_and(|b| b.size() >= bytes) {
            return false;
        }
        self.0 = Some(ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        }));
        true
    }

    pub fn get(&self) -> &wgpu::Buffer {
        self.0.as_ref().expect("reserved before use")
    }
}

#[derive(Default)]
pub(crate) struct Workspace {
    /// Hidden rows as f32, zero-padded to the shader's stride.
    pub hidden: Grown,
    pub rows: Grown,
    /// Uniform slots: the reduction's, then one per weight binding.
    pub params: Grown,
    /// Tile winners of one launch.
    pub partial: Grown,
    pub out: Grown,
    pub readback: Grown,
    /// Bumped whenever a buffer is replaced: bind groups made before then are stale.
    pub generation: u64,
    /// The host copy of the hidden rows, kept for its capacity.
    pub host_hidden: Vec<f32>,
    reduce_group: Option<(u64, wgpu::BindGroup)>,
    /// Made by the first call with constraints or logprobs.
    pub features: FeatureSpace,
}

impl Workspace {
    pub fn reserve(&mut self, ctx: &Context, sizes: &Sizes) {
        use wgpu::BufferUsages as U;
        let grew = [
            self.hidden.reserve(ctx, "hidden", U::STORAGE | U::COPY_DST, sizes.hidden),
            self.rows.reserve(ctx, "rows", U::STORAGE | U::COPY_DST, sizes.rows),
            self.params.reserve(ctx, "params", U::UNIFORM | U::COPY_DST, sizes.params),
            self.partial.reserve(ctx, "tile winners", U::STORAGE, sizes.partial),
            self.out.reserve(ctx, "candidates", U::STORAGE | U::COPY_SRC, sizes.out),
            self.readback.reserve(ctx, "read back", U::MAP_READ | U::COPY_DST, sizes.out),
        ];
        if grew.contains(&true) {
            self.generation += 1;
        }
    }

    /// Uniform slot `slot` of `params`, `bytes` long.
    pub fn params_slot(&self, ctx: &Context, slot: usize, bytes: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.params.get(),
            offset: slot as u64 * ctx.params_slot_bytes(),
            size: wgpu::BufferSize::new(bytes),
        })
    }

    /// The reduction pass's bind group over the current buffers.
    pub fn reduce_group(&mut self, ctx: &Context, params_bytes: u64) -> wgpu::BindGroup {
        if let Some((generation, group)) = &self.reduce_group {
            if *generation == self.generation {
                return group.clone();
            }
        }
        let group = ctx.bind_group(
            &ctx.reduce_layout,
            &[
                self.params_slot(ctx, 0, params_bytes),
                self.partial.get().as_entire_binding(),
                self.out.get().as_entire_binding(),
            ],
        );
        self.reduce_group = Some((self.generation, group.clone()));
        group
    }
}

/// The buffers of pass 1's features epilogue (its bind group 1), of the top-N merge and of the
/// truncated rows' finish.
#[derive(Default)]
pub(crate) struct FeatureSpace {
    /// The constraints table of the call (features.rs).
    pub table: Grown,
    /// Log-normaliser partials per (tile, row).
    pub norms: Grown,
    pub norms_readback: Grown,
    /// The best N keys per (tile, row), then the scaled logits of truncated rows.
    pub ranked: Grown,
    pub scaled_readback: Grown,
    /// The top-N merge's parameters and its output, N keys per row.
    pub top_params: Grown,
    pub top: Grown,
    pub top_readback: Grown,
    groups: Option<(wgpu::BindGroup, wgpu::BindGroup)>,
    /// finish.wgsl's parameters, rows and survivors.
    pub finish_params: Grown,
    pub finishes: Grown,
    pub survivors: Grown,
}

/// Bytes of each buffer of [`FeatureSpace`] one call needs.
pub(crate) struct FeatureSizes {
    pub table: u64,
    pub norms: u64,
    /// The tiles' top-N lists and the truncated rows' scaled logits.
    pub ranked: u64,
    pub scaled: u64,
    pub top: u64,
}

/// Bytes of the `Params` struct of top.wgsl.
pub(crate) const TOP_PARAMS: u64 = 16;

impl FeatureSpace {
    pub fn reserve(&mut self, ctx: &Context, sizes: &FeatureSizes) {
        use wgpu::BufferUsages as U;
        let grew = [
            self.table.reserve(ctx, "constraints", U::STORAGE | U::COPY_DST, sizes.table),
            self.norms.reserve(ctx, "normaliser partials", U::STORAGE | U::COPY_SRC, sizes.norms),
            self.norms_readback.reserve(ctx, "normaliser read back", U::MAP_READ | U::COPY_DST, sizes.norms),
            // A runtime-sized array binds at least 8 bytes in top.wgsl, also when no row ranks.
            self.ranked.reserve(ctx, "ranked", U::STORAGE | U::COPY_SRC, sizes.ranked.max(8)),
            self.scaled_readback.reserve(ctx, "scaled read back", U::MAP_READ | U::COPY_DST, sizes.scaled),
            self.top_params.reserve(ctx, "top-N params", U::UNIFORM | U::COPY_DST, TOP_PARAMS),
            self.top.reserve(ctx, "top-N", U::STORAGE | U::COPY_SRC, sizes.top.max(8)),
            self.top_readback.reserve(ctx, "top-N read back", U::MAP_READ | U::COPY_DST, sizes.top.max(8)),
        ];
        if grew.contains(&true) {
            self.groups = None;
        }
    }

    /// The features epilogue's bind group and the top-N merge's, over the current buffers.
    pub fn bind_groups(&mut self, ctx: &Context) -> (wgpu::BindGroup, wgpu::BindGroup) {
        self.groups
            .get_or_insert_with(|| {
                let epilogue = ctx.bind_group(
                    &ctx.features_layout,
                    &[
                        self.table.get().as_entire_binding(),
                        self.norms.get().as_entire_binding(),
                        self.ranked.get().as_entire_binding(),
                    ],
                );
                let merge = ctx.bind_group(
                    &ctx.reduce_layout,
                    &[
                        self.top_params.get().as_entire_binding(),
                        self.ranked.get().as_entire_binding(),
                        self.top.get().as_entire_binding(),
                    ],
                );
                (epilogue, merge)
            })
            .clone()
    }

    /// Makes finish.wgsl's buffers hold `params`, `finishes` and `survivors` bytes.
    pub fn reserve_finish(&mut self, ctx: &Context, params: u64, finishes: u64, survivors: u64) {
        use wgpu::BufferUsages as U;
        self.finish_params.reserve(ctx, "finish params", U::UNIFORM | U::COPY_DST, params);
        self.finishes.reserve(ctx, "finishes", U::STORAGE | U::COPY_DST, finishes);
        self.survivors.reserve(ctx, "survivors", U::STORAGE | U::COPY_DST, survivors.max(8));
    }
}

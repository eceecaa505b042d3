// Pass 2: each thread folds one (row, sample)'s tile winners into the output, as (lo, hi) words
// so that the host reads them back as little-endian u64 candidates. Writes every output slot.

struct Params {
    tiles: u32,
    outputs: u32, // batch × samples of this launch
    sample_base: u32,
    samples: u32, // samples per row of the whole call
    batch: u32,
    sample_count: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if i >= params.outputs {
        return;
    }
    var best = vec2<u32>(0u, 0u);
    for (var t = 0u; t < params.tiles; t++) {
        let c = partial[t * params.outputs + i];
        if c.x > best.x || (c.x == best.x && c.y > best.y) {
            best = c;
        }
    }
    let b = i / params.sample_count;
    let j = i % params.sample_count;
    out[b * params.samples + params.sample_base + j] = vec2<u32>(best.y, best.x);
}

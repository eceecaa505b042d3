// Pass 2: folds each (row, sample)'s tile winners into the output, as (lo, hi) words so that the
// host reads them back as little-endian u64 candidates. LANES invocations share one output: they
// scan its tiles strided (many loads in flight even for one row and one sample over thousands of
// tiles), then a tree in workgroup memory keeps the best. Writes every output slot. The host
// prefixes candidate.wgsl.

struct Params {
    tiles: u32,
    outputs: u32, // batch × samples of this launch
    sample_base: u32,
    samples: u32, // samples per row of the whole call
    batch: u32,
    sample_count: u32,
    lanes: u32, // invocations per output: a power of two dividing THREADS
    pad: u32,
}

const THREADS: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2<u32>>;

var<workgroup> best: array<vec2<u32>, THREADS>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lanes = params.lanes;
    let lane = lid % lanes;
    let i = (wg.x + wg.y * groups.x) * (THREADS / lanes) + lid / lanes;
    var mine = vec2<u32>(0u, 0u);
    if i < params.outputs {
        for (var t = lane; t < params.tiles; t += lanes) {
            let c = partial[t * params.outputs + i];
            if better(c, mine) {
                mine = c;
            }
        }
    }
    best[lid] = mine;
    for (var step = lanes / 2u; step > 0u; step /= 2u) {
        workgroupBarrier();
        if lane < step && better(best[lid + step], best[lid]) {
            best[lid] = best[lid + step];
        }
    }
    if i < params.outputs && lane == 0u {
        let b = i / params.sample_count;
        let j = i % params.sample_count;
        out[b * params.samples + params.sample_base + j] = vec2<u32>(best[lid].y, best[lid].x);
    }
}

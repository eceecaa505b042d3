// Pass 1: fused logits + Gumbel-max. Workgroup (tile, row, sample block): 64 threads compute the
// tile's 64 logits once into workgroup memory, then each thread takes samples and keeps its best
// packed candidate over the tile. No subgroup operations, so any subgroup size works.
// Candidates are (hi, lo) u32 pairs compared lexicographically: the u64 order of DESIGN.md §3.4.

// 0: f32, 1: bf16 (two per u32 word, low half first), 2: f16 (unpack2x16float, core WGSL).
override DTYPE: u32 = 0u;
const TILE: u32 = 64u;

struct Params {
    chunk_rows: u32,   // vocabulary rows in this weight binding
    first_token: u32,  // global token of the binding's row 0 (vocab_offset + chunk start)
    dim: u32,
    batch: u32,
    sample_base: u32,  // first sample of this launch
    sample_count: u32, // samples of this launch
    tile_base: u32,    // slot of this binding's tile 0 in `partial`
    gumbel_max: f32,   // largest Gumbel value: tokens below best - gumbel_max skip their noise
}

struct Row {
    inv_temperature: f32,
    greedy: u32,
    seed: vec2<u32>,
    offset: vec2<u32>,
    pad: vec2<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> hidden: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<Row>;
@group(0) @binding(4) var<storage, read> bounds: array<f32, 33>;
@group(0) @binding(5) var<storage, read_write> partial: array<vec2<u32>>;

var<workgroup> scaled: array<f32, TILE>;

fn weight(e: u32) -> f32 {
    if DTYPE == 0u {
        return bitcast<f32>(weights[e]);
    }
    let word = weights[e >> 1u];
    if DTYPE == 1u {
        return bitcast<f32>(select(word << 16u, word & 0xFFFF0000u, (e & 1u) == 1u));
    }
    return unpack2x16float(word)[e & 1u];
}

// Order-preserving image of the f32 bits, every NaN made the positive quiet NaN first.
fn orderable(x: f32) -> u32 {
    var bits = bitcast<u32>(x);
    if (bits & 0x7FFFFFFFu) > 0x7F800000u {
        bits = 0x7FC00000u;
    }
    if (bits & 0x80000000u) != 0u {
        return ~bits;
    }
    return bits | 0x80000000u;
}

fn from_orderable(key: u32) -> f32 {
    if (key & 0x80000000u) != 0u {
        return bitcast<f32>(key & 0x7FFFFFFFu);
    }
    return bitcast<f32>(~key);
}

fn better(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y > b.y);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let tile = wg.x;
    let b = wg.y;
    let row = rows[b];
    let first = tile * TILE;
    let count = min(TILE, params.chunk_rows - first);

    if lid < count {
        let w0 = (first + lid) * params.dim;
        let h0 = b * params.dim;
        var acc = 0.0;
        for (var d = 0u; d < params.dim; d++) {
            acc += weight(w0 + d) * hidden[h0 + d];
        }
        scaled[lid] = select(acc * row.inv_temperature, acc, row.greedy != 0u);
    }
    workgroupBarrier();

    let slot = (params.tile_base + tile) * params.batch + b;
    for (var j = wg.z * TILE + lid; j < params.sample_count; j += groups.z * TILE) {
        let sample = params.sample_base + j;
        var best = vec2<u32>(0u, 0u);
        var best_score = 0.0;
        var group = 0xFFFFFFFFu;
        var words = vec4<u32>(0u);
        for (var i = 0u; i < count; i++) {
            let y = scaled[i];
            let token = params.first_token + first + i;
            var x = y;
            if row.greedy == 0u {
                if best.x != 0u && y + params.gumbel_max < best_score {
                    continue;
                }
                if (token >> 2u) != group {
                    group = token >> 2u;
                    words = noise_words(row.seed, row.offset, sample, token);
                }
                let word = words[token & 3u];
                if best.x != 0u && y + bounds[countLeadingZeros(word)] < best_score {
                    continue;
                }
                x = y + gumbel_from_word(word);
            }
            let cand = vec2<u32>(orderable(x), 0xFFFFFFFFu - token);
            if better(cand, best) {
                best = cand;
                best_score = from_orderable(cand.x);
            }
        }
        partial[slot * params.sample_count + j] = best;
    }
}

// Truncated rows: Gumbel-max over each row's survivors, cut on the host (truncation.rs), with the
// noise of pass 1, so that a truncated row draws the untruncated row's token whenever that token
// survives. One workgroup per (row, sample): each invocation scans the survivors strided, most
// likely first, and stops at the first that cannot beat its best even with the largest noise; a
// tree in workgroup memory keeps the best. Candidates go to pass 2's output as (lo, hi) words.
// The host prefixes noise.wgsl and candidate.wgsl.

struct Params {
    items: u32,      // truncated rows × samples
    samples: u32,    // samples per row of the call
    gumbel_max: f32, // largest Gumbel value
    pad: u32,
}

struct Finish {
    row: u32,   // the row of the call
    first: u32, // its survivors are survivors[first .. first + count]
    count: u32,
    pad: u32,
    seed: vec2<u32>,
    offset: vec2<u32>,
}

const THREADS: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> finishes: array<Finish>;
@group(0) @binding(2) var<storage, read> survivors: array<vec2<u32>>; // (y as f32 bits, token), best first
@group(0) @binding(3) var<storage, read_write> out: array<vec2<u32>>; // [row][sample]

var<workgroup> best: array<vec2<u32>, THREADS>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let item = wg.x + wg.y * groups.x;
    if item >= params.items {
        return;
    }
    let f = finishes[item / params.samples];
    let sample = item % params.samples;
    var mine = vec2<u32>(0u, 0u);
    var mine_score = 0.0;
    for (var j = lid; j < f.count; j += THREADS) {
        let s = survivors[f.first + j];
        let y = bitcast<f32>(s.x);
        if mine.x != 0u && y + params.gumbel_max < mine_score {
            break;
        }
        let word = noise_words(f.seed, f.offset, sample, s.y)[s.y & 3u];
        let cand = vec2<u32>(orderable(y + gumbel_from_word(word)), 0xFFFFFFFFu - s.y);
        if better(cand, mine) {
            mine = cand;
            mine_score = from_orderable(cand.x);
        }
    }
    best[lid] = mine;
    for (var step = THREADS / 2u; step > 0u; step /= 2u) {
        workgroupBarrier();
        if lid < step && better(best[lid + step], best[lid]) {
            best[lid] = best[lid + step];
        }
    }
    if lid == 0u {
        out[f.row * params.samples + sample] = vec2<u32>(best[0].y, best[0].x);
    }
}

// Pass 1: fused logits + Gumbel-max. A workgroup owns a tile of TILE vocabulary rows and
// BATCH_TILE hidden rows (and one block of samples):
// 1. Matmul: LANES consecutive invocations share each weight row and read it as consecutive
//    vec4<u32> words (coalesced); each invocation keeps a register tile of ROWS_PER_INVOCATION
//    vocabulary rows × BATCH_TILE hidden rows, so every weight word feeds BATCH_TILE rows and every
//    staged hidden value feeds ROWS_PER_INVOCATION rows. Hidden rows are staged CHUNK elements at a
//    time in workgroup memory; the LANES partial sums meet in the tile's logits, lane by lane.
// 2. Sampling: every (hidden row, sample) of the tile is split over up to TILE / 4 invocations (4
//    tokens share a Philox evaluation), which keep their best packed candidate; a tree in workgroup
//    memory picks the tile's winner per (row, sample).
// No subgroup operations, so any subgroup size works. Candidates are (hi, lo) u32 pairs
// (candidate.wgsl).
//
// The host prefixes these constants, noise.wgsl and candidate.wgsl (shape.rs, `SampleShape`):
//   DTYPE: 0 f32, 1 bf16 (two per u32 word, low half first), 2 f16 (unpack2x16float, core WGSL);
//   BATCH_TILE: hidden rows per workgroup; STAGE_FLOATS: f32 of workgroup memory for staging;
//   CHUNK_STEPS: lane steps per staged hidden chunk; LANES: invocations per weight row; THREADS:
//   invocations per workgroup (16 row groups of LANES).
// and an epilogue defining `scaled_logit` and `tile_done`: sample_plain.wgsl (temperature only),
// or sample_features.wgsl for calls with constraints, logprobs or truncation, so that plain calls
// run no code of those.
// Workgroups are numbered x-fastest over (x, y) and take (tile, batch tile) with the batch tile
// fastest, so that the workgroups reading the same weights run together and share them in L2.
// Compiled without naga's index clamps (context.rs, `Indices`), so every index is in range by
// construction, and must stay so: hidden rows padded to whole chunks and whole batch tiles (host),
// weight rows clamped to the tile's last row and words checked against the row's length, `stage`
// below BATCH_TILE × CHUNK4, `logits` below BATCH_TILE × TILE, `cands` within each item's slices,
// `bounds` by a leading-zero count (0 … 32), `rows` and `partial` by live rows and the launch's
// samples; the epilogues index `logits` below BATCH_TILE × TILE too.

const ROW_GROUPS: u32 = THREADS / LANES;
const ROWS_PER_INVOCATION: u32 = 4u; // the four lanes of a vec4<f32> accumulator
const TILE: u32 = ROW_GROUPS * ROWS_PER_INVOCATION;
const PER_WORD4: u32 = select(8u, 4u, DTYPE == 0u); // weights per vec4<u32>
const STEP_ELEMS: u32 = LANES * PER_WORD4; // hidden elements one lane step covers
const CHUNK: u32 = CHUNK_STEPS * STEP_ELEMS;
const CHUNK4: u32 = CHUNK / 4u;
const STAGE4: u32 = STAGE_FLOATS / 4u;
const UNROLL: u32 = min(2u, CHUNK_STEPS); // lane steps whose loads are issued together

struct Params {
    chunk_rows: u32,     // vocabulary rows in this weight binding
    first_token: u32,    // global token of the binding's row 0 (vocab_offset + chunk start)
    words_per_row: u32,  // vec4<u32> words per weight row (rows padded to 16 bytes)
    steps: u32,          // lane steps per row: ceil(words_per_row / LANES)
    hidden_stride: u32,  // f32 per hidden row, padded with zeros to a whole number of chunks
    batch: u32,
    sample_base: u32,    // first sample of this launch
    sample_count: u32,   // samples of this launch
    tile_base: u32,      // slot of this binding's tile 0 in `partial`
    gumbel_max: f32,     // largest Gumbel value: tokens below best - gumbel_max skip their noise
    batch_tiles: u32,    // ceil(batch / BATCH_TILE)
    tiles: u32,          // tiles of this binding
}

struct Row {
    inv_temperature: f32,
    greedy: u32,
    seed: vec2<u32>,
    offset: vec2<u32>,
    ranked_at: u32, // features epilogue: first word of the row's scaled logits in `ranked`, or NO_ROW
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> hidden: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rows: array<Row>;
@group(0) @binding(4) var<storage, read> bounds: array<f32, 33>;
@group(0) @binding(5) var<storage, read_write> partial: array<vec2<u32>>;

var<workgroup> stage: array<vec4<f32>, STAGE4>;
var<workgroup> logits: array<f32, TILE * BATCH_TILE>; // [hidden row][tile row], scaled by 1/T
var<workgroup> cands: array<vec2<u32>, THREADS>;

// One lane step of an invocation's weight rows: word k of each row, zero past the row's end.
fn load_words(row_starts: vec4<u32>, k: u32) -> array<vec4<u32>, ROWS_PER_INVOCATION> {
    var w: array<vec4<u32>, ROWS_PER_INVOCATION>;
    if k < params.words_per_row {
        for (var i = 0u; i < ROWS_PER_INVOCATION; i++) {
            w[i] = weights[row_starts[i] + k];
        }
    }
    return w;
}

// The PER_WORD4 weights of each row as columns: column e holds element e of the four rows.
fn columns(words: array<vec4<u32>, ROWS_PER_INVOCATION>) -> array<vec4<f32>, PER_WORD4> {
    var w = words;
    var c: array<vec4<f32>, PER_WORD4>;
    for (var j = 0u; j < 4u; j++) {
        let word = vec4<u32>(w[0][j], w[1][j], w[2][j], w[3][j]);
        if DTYPE == 0u {
            c[j] = bitcast<vec4<f32>>(word);
        } else if DTYPE == 1u {
            c[2u * j] = bitcast<vec4<f32>>(word << vec4<u32>(16u));
            c[2u * j + 1u] = bitcast<vec4<f32>>(word & vec4<u32>(0xFFFF0000u));
        } else {
            let p0 = unpack2x16float(word.x);
            let p1 = unpack2x16float(word.y);
            let p2 = unpack2x16float(word.z);
            let p3 = unpack2x16float(word.w);
            c[2u * j] = vec4<f32>(p0.x, p1.x, p2.x, p3.x);
            c[2u * j + 1u] = vec4<f32>(p0.y, p1.y, p2.y, p3.y);
        }
    }
    return c;
}

// Where hidden vec4 `c` of a staged row goes: for 16-bit weights a lane reads two vec4s per step,
// stored LANES apart so that consecutive lanes read consecutive vec4s.
fn staged_index(c: u32) -> u32 {
    if PER_WORD4 == 4u {
        return c;
    }
    let v = c % (2u * LANES);
    return c - v + (v % 2u) * LANES + v / 2u;
}

// Copies hidden elements [chunk * CHUNK, (chunk + 1) * CHUNK) of the workgroup's rows to `stage`.
fn stage_hidden(chunk: u32, first_hidden: u32, lid: u32) {
    for (var q = lid; q < BATCH_TILE * CHUNK4; q += THREADS) {
        let r = q / CHUNK4;
        let c = q % CHUNK4;
        let src = ((first_hidden + r) * params.hidden_stride + chunk * CHUNK) / 4u + c;
        stage[r * CHUNK4 + staged_index(c)] = hidden[src];
    }
}

fn accumulate(acc: ptr<function, array<vec4<f32>, BATCH_TILE>>, w: array<vec4<u32>, ROWS_PER_INVOCATION>,
              step_in_chunk: u32, lane: u32) {
    var col = columns(w);
    for (var r = 0u; r < BATCH_TILE; r++) {
        let at = r * CHUNK4 + step_in_chunk * (STEP_ELEMS / 4u) + lane;
        var sum = (*acc)[r];
        for (var half = 0u; half < PER_WORD4 / 4u; half++) {
            let h = stage[at + half * LANES];
            sum += col[4u * half] * h.x;
            sum += col[4u * half + 1u] * h.y;
            sum += col[4u * half + 2u] * h.z;
            sum += col[4u * half + 3u] * h.w;
        }
        (*acc)[r] = sum;
    }
}

// y = l / T, or l for greedy rows.
fn tempered(l: f32, row: Row) -> f32 {
    return select(l * row.inv_temperature, l, row.greedy != 0u);
}

// The best packed candidate of tile rows [begin, end) for one hidden row and sample.
fn best_of(row: Row, r: u32, sample: u32, first_token: u32, begin: u32, end: u32) -> vec2<u32> {
    var best = vec2<u32>(0u, 0u);
    var best_score = 0.0;
    var group = 0xFFFFFFFFu;
    var words = vec4<u32>(0u);
    for (var i = begin; i < end; i++) {
        let y = logits[r * TILE + i];
        let token = first_token + i;
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
    return best;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = wg.x + wg.y * groups.x;
    let tile = n / params.batch_tiles;
    if tile >= params.tiles {
        return;
    }
    let lane = lid % LANES;
    let row_group = lid / LANES;
    let first = tile * TILE;
    let tile_rows = min(TILE, params.chunk_rows - first);
    let first_hidden = (n % params.batch_tiles) * BATCH_TILE;

    // 1. Matmul. Rows past the binding's end read its last row; their sums are never used.
    let local_rows = row_group * ROWS_PER_INVOCATION + vec4<u32>(0u, 1u, 2u, 3u);
    let row_starts = (first + min(local_rows, vec4<u32>(tile_rows - 1u))) * params.words_per_row;
    var acc: array<vec4<f32>, BATCH_TILE>;
    for (var s = 0u; s < params.steps; s += UNROLL) {
        // Issue the loads first: they fly while the hidden chunk is staged.
        var w: array<array<vec4<u32>, ROWS_PER_INVOCATION>, UNROLL>;
        for (var u = 0u; u < UNROLL; u++) {
            w[u] = load_words(row_starts, (s + u) * LANES + lane);
        }
        if s % CHUNK_STEPS == 0u {
            workgroupBarrier();
            stage_hidden(s / CHUNK_STEPS, first_hidden, lid);
            workgroupBarrier();
        }
        for (var u = 0u; u < UNROLL; u++) {
            accumulate(&acc, w[u], (s + u) % CHUNK_STEPS, lane);
        }
    }

    // Sum the LANES partial dot products of each (vocabulary row, hidden row) into `logits`, one
    // lane after another: `acc` is indexed by constants only, so the driver keeps it in registers
    // (an index that varies with a loop around a barrier put it in local memory). Then scale by
    // 1/T (after the constraints, in the features epilogue).
    for (var l = 0u; l < LANES; l++) {
        workgroupBarrier();
        if lane == l {
            for (var r = 0u; r < BATCH_TILE; r++) {
                for (var i = 0u; i < ROWS_PER_INVOCATION; i++) {
                    let at = r * TILE + row_group * ROWS_PER_INVOCATION + i;
                    logits[at] = select(logits[at], 0.0, l == 0u) + acc[r][i];
                }
            }
        }
    }
    workgroupBarrier();
    for (var o = lid; o < BATCH_TILE * TILE; o += THREADS) {
        let r = o / TILE;
        let b = min(first_hidden + r, params.batch - 1u);
        logits[o] = scaled_logit(logits[o], rows[b], b, params.first_token + first + o % TILE);
    }
    workgroupBarrier();
    tile_done(tile, first_hidden, tile_rows, wg.z, lid);

    // 2. Sampling: this workgroup's block of samples, (hidden row, sample) items split into slices.
    let per_block = (params.sample_count + groups.z - 1u) / groups.z;
    let j0 = min(wg.z * per_block, params.sample_count);
    let block = min(per_block, params.sample_count - j0);
    let items = BATCH_TILE * block;
    var slices = TILE / 4u;
    while slices > 1u && items * slices > THREADS {
        slices /= 2u;
    }
    let per_slice = TILE / slices;
    let slice = lid % slices;
    let first_token = params.first_token + first;
    for (var base = 0u; base < items; base += THREADS / slices) {
        let item = base + lid / slices;
        let r = item / max(block, 1u);
        let j = j0 + item % max(block, 1u);
        let b = first_hidden + r;
        let live = item < items && b < params.batch;
        var best = vec2<u32>(0u, 0u);
        if live {
            let begin = slice * per_slice;
            best = best_of(rows[b], r, params.sample_base + j, first_token, begin, min(begin + per_slice, tile_rows));
        }
        workgroupBarrier();
        cands[lid] = best;
        for (var step = slices / 2u; step > 0u; step /= 2u) {
            workgroupBarrier();
            if slice < step && better(cands[lid + step], cands[lid]) {
                cands[lid] = cands[lid + step];
            }
        }
        if live && slice == 0u {
            partial[((params.tile_base + tile) * params.batch + b) * params.sample_count + j] = cands[lid];
        }
    }
}

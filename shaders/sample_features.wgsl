// sample.wgsl's epilogue for calls with constraints or logprobs (DESIGN.md §3.3, §3.7): each logit
// is transformed as the core's RowTransform::apply does it (penalties and bias, then the mask),
// before temperature; then each (tile, row) leaves its log-normaliser partial over y and, for
// top-N logprobs, its N best (y, token) keys (merged over tiles by top.wgsl); rows that truncation
// cuts leave their scaled logits y, which the host ranks (truncation.rs).
//
// `table` (features.rs): entry b < batch is row b's (first adjustment, end of its adjustments,
// word of its mask or NO_MASK, N of its top-N list); an adjustment is (token, scale for positive
// logits, scale for the rest, added), f32 as bits, sorted by token within a row; mask words
// follow, one bit per global token, set = allowed.

@group(1) @binding(0) var<storage, read> table: array<vec4<u32>>;
@group(1) @binding(1) var<storage, read_write> norms: array<vec2<f32>>; // [tile][row]: (max y, Σ exp(y - max y))
// The tiles' top-N keys, [tile][row][N] (hi, lo) word pairs, best first; then the scaled logits
// of each row ranked on the host, by token, from the row's `ranked_at`.
@group(1) @binding(2) var<storage, read_write> ranked: array<u32>;

const NO_MASK: u32 = 0xFFFFFFFFu;
const NO_ROW: u32 = 0xFFFFFFFFu;
const NEG_INF_BITS: u32 = 0xFF800000u;

// The first adjustment of entries [begin, end) whose token is not below `token`.
fn lower_bound(begin: u32, end: u32, token: u32) -> u32 {
    var lo = begin;
    var hi = end;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if table[mid].x < token {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

fn allowed(mask: u32, token: u32) -> bool {
    let w = mask + token / 32u;
    return ((table[w / 4u][w % 4u] >> (token % 32u)) & 1u) != 0u;
}

fn scaled_logit(sum: f32, row: Row, b: u32, token: u32) -> f32 {
    let entry = table[b];
    var l = sum;
    let at = lower_bound(entry.x, entry.y, token);
    if at < entry.y && table[at].x == token {
        let a = bitcast<vec4<f32>>(table[at]);
        l = l * select(a.z, a.y, l > 0.0) + a.w;
    }
    if entry.z != NO_MASK && !allowed(entry.z, token) {
        l = bitcast<f32>(NEG_INF_BITS);
    }
    return tempered(l, row);
}

// The first sample block leaves the tile's partials (the others compute the same logits).
fn tile_done(tile: u32, first_hidden: u32, tile_rows: u32, block: u32, lid: u32) {
    if block == 0u {
        tile_norm(tile, first_hidden, tile_rows, lid);
        tile_ranked(tile, first_hidden, tile_rows, lid);
    }
}

// One invocation per hidden row: the tile's (max y, Σ exp(y - max y)).
fn tile_norm(tile: u32, first_hidden: u32, tile_rows: u32, lid: u32) {
    let b = first_hidden + lid;
    if lid >= BATCH_TILE || b >= params.batch {
        return;
    }
    let ys = lid * TILE;
    var top = logits[ys];
    for (var i = 1u; i < tile_rows; i++) {
        top = max(top, logits[ys + i]);
    }
    var sum = 0.0;
    if bitcast<u32>(top) != NEG_INF_BITS {
        for (var i = 0u; i < tile_rows; i++) {
            sum += exp(logits[ys + i] - top);
        }
    }
    norms[(params.tile_base + tile) * params.batch + b] = vec2<f32>(top, sum);
}

// One invocation per (hidden row, tile row): what the ranking outputs need of the tile.
fn tile_ranked(tile: u32, first_hidden: u32, tile_rows: u32, lid: u32) {
    for (var q = lid; q < BATCH_TILE * TILE; q += THREADS) {
        let r = q / TILE;
        let i = q % TILE;
        let b = first_hidden + r;
        if b >= params.batch {
            break;
        }
        top_n_slot(tile, b, r * TILE, i, tile_rows);
        // The scaled logits of a row ranked on the host, by global token (truncation runs on
        // whole heads only: the token is the row index).
        let at = rows[b].ranked_at;
        if at != NO_ROW && i < tile_rows {
            ranked[at + params.first_token + tile * TILE + i] = bitcast<u32>(logits[r * TILE + i]);
        }
    }
}

// Tile row i's token's rank among the tile's tokens of positive probability (logits from `ys`),
// by key (y, token) as the candidates order them; the token of rank i < N fills slot i, and row i
// fills slot i with EMPTY where fewer than N tokens have positive probability.
fn top_n_slot(tile: u32, b: u32, ys: u32, i: u32, tile_rows: u32) {
    let n = table[b].w;
    if n == 0u || i >= max(tile_rows, n) {
        return;
    }
    let first_token = params.first_token + tile * TILE;
    let y = logits[ys + min(i, tile_rows - 1u)];
    let key = vec2<u32>(orderable(y), 0xFFFFFFFFu - (first_token + i));
    var kept = 0u;
    var rank = 0u;
    for (var j = 0u; j < tile_rows; j++) {
        let other = logits[ys + j];
        if bitcast<u32>(other) != NEG_INF_BITS {
            kept += 1u;
            rank += u32(better(vec2<u32>(orderable(other), 0xFFFFFFFFu - (first_token + j)), key));
        }
    }
    let slots = ((params.tile_base + tile) * params.batch + b) * n;
    if i < tile_rows && bitcast<u32>(y) != NEG_INF_BITS && rank < n {
        put_key(slots + rank, key);
    }
    if i >= kept && i < n {
        put_key(slots + i, vec2<u32>(0u, 0u));
    }
}

fn put_key(slot: u32, key: vec2<u32>) {
    ranked[2u * slot] = key.x;
    ranked[2u * slot + 1u] = key.y;
}

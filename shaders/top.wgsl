// Top-N logprobs: merges each row's per-tile lists of its N best (y, token) keys (left by pass 1's
// features epilogue, best first, EMPTY-padded) into the row's N best, as (lo, hi) words so that the
// host reads them back as little-endian u64 keys. One workgroup per row: each invocation keeps the
// best of the tiles it scans strided, then a tree in workgroup memory merges the lists. The top N
// of a union is the top N of the parts' top N, and keys are distinct (tokens are), so the result
// does not depend on the order of the merge. The host prefixes candidate.wgsl.

struct Params {
    tiles: u32,
    batch: u32,
    n: u32, // N ≤ MAX_N
    pad: u32,
}

const THREADS: u32 = 64u;
const MAX_N: u32 = 20u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tile_top: array<vec2<u32>>; // [tile][row][N]
@group(0) @binding(2) var<storage, read_write> top: array<vec2<u32>>; // [row][N]

var<workgroup> lists: array<array<vec2<u32>, MAX_N>, THREADS>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = wg.x + wg.y * groups.x;
    if b >= params.batch {
        return;
    }
    let n = params.n;
    var mine: array<vec2<u32>, MAX_N>;
    for (var t = lid; t < params.tiles; t += THREADS) {
        let list = (t * params.batch + b) * n;
        for (var i = 0u; i < n; i++) {
            let key = tile_top[list + i];
            if !better(key, mine[n - 1u]) {
                break; // the list is sorted: nothing after it enters either
            }
            var at = n - 1u;
            while at > 0u && better(key, mine[at - 1u]) {
                mine[at] = mine[at - 1u];
                at--;
            }
            mine[at] = key;
        }
    }
    lists[lid] = mine;
    for (var step = THREADS / 2u; step > 0u; step /= 2u) {
        workgroupBarrier();
        if lid < step {
            var merged: array<vec2<u32>, MAX_N>;
            var i = 0u;
            var j = 0u;
            for (var k = 0u; k < n; k++) {
                let a = lists[lid][i];
                let c = lists[lid + step][j];
                if better(c, a) {
                    merged[k] = c;
                    j++;
                } else {
                    merged[k] = a;
                    i++;
                }
            }
            lists[lid] = merged;
        }
    }
    workgroupBarrier();
    if lid < n {
        let key = lists[0][lid];
        top[b * n + lid] = vec2<u32>(key.y, key.x);
    }
}

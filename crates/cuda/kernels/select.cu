// ---- the most likely tokens of ranking rows: selection over their scaled logits or lists ------
//
// The `_ex` kernels write y = l̃ / T of the rows that rank their tokens (truncation, top-N), or keep
// per-tile lists of their keys (below); this keeps, per such row, the `length` largest keys
// pack(y, token) — the rank order of the core's `ranked.rs` (y descending, then token ascending;
// keys are unique). Masked tokens (y = -inf) are never ranked, as in the core.
//
// Two launches over every row, many blocks per row (every launch between the fused kernel and the
// decoding costs microseconds at small batches):
// (1) `select_count` counts the tokens with y ≥ M − δ for a ladder of δ, M the row's maximum (the
//     largest of its log-normaliser partials' maxima); the first block of every batch row also
//     merges the row's partials (merge_norms' order), so the call needs no merge launch;
// (2) `select_gather` takes the smallest δ whose set holds at least `need` tokens and fits in
//     shared memory — that set contains the top `need` keys, since every one of them has y ≥ the
//     need-th largest y ≥ M − δ — and appends the set's keys to the row's buffer. The row's last
//     block to finish (a ticket in its counters) then sorts the set in shared memory and finishes
//     a truncated row (finish.cu), from its whole row when the kept keys cannot certify it
//     (finish_whole.cu).
// Rows where no δ fits (flat rows, NaN, +inf) take the radix select over all keys in that last
// block: 8-bit digits from the top, a histogram per pass over the keys that still match the chosen
// prefix, until the threshold key T has exactly `need` keys ≥ T.
//
// A launch whose ranking rows all keep short lists (tile_lists.cuh) writes no scaled logits: one
// launch, `select_lists`, merges each row's per-tile lists instead. A row's `need` largest keys are
// at or above the need-th largest of the lists' tops (need distinct keys are), so it gathers those
// keys into shared memory and sorts them; when more than fit there reach it (flat rows), the radix
// select runs over the lists.

#define SELECT_THREADS 1024
#define SELECT_LOADS 8
// Keys the fast path sorts in shared memory (32 KiB).
#define SELECT_CAP 4096
// The longest list a row keeps: MAX_TOP_K of the core.
#define SELECT_MAX_KEPT 1024
// δ_j = 2^(j/2 − 6) for j < SELECT_LADDER: 1/64 … 2^9.5, steps of √2 (a set that holds the top
// `need` keys without many more to sort).
#define SELECT_LADDER 32
// Threads per block of the counting pass (the gathering pass has SELECT_THREADS, for the block that
// finishes the row), and the loads each thread keeps in flight in either pass.
#define CHUNK_THREADS 256
#define CHUNK_LOADS 16

// Per ranking row, what the passes share: the ladder's counts, the tokens of finite y, the NaN and
// +inf tokens, how many keys the gather has appended, and how many of its blocks are done.
struct SelectCounters {
    u32 within[SELECT_LADDER];
    u32 live;
    u32 odd;
    u32 filled;
    u32 arrived;
};

// `SelectArgs` in src/launch.rs (128 bytes). Grid of the passes over scaled logits: x over chunks of
// a block's threads · CHUNK_LOADS tokens, y over the batch (select_lists: x = 1); rows that rank
// nothing return at once (after merging their partials).
struct SelectArgs {
    const float* scaled;        // [ranking row][v_rows]
    const u32* scaled_row;      // per batch row: its ranking row, NO_MASK when it ranks nothing
    const float2* parts;        // [batch row][slots]: the fused launch's log-normaliser partials
    RowNorm* norms;             // per batch row: its merged log-normaliser, written by select_count or
                                // select_lists; a row finished here gets its survivors' instead
    const u32* out_start;       // ranking rows + 1 offsets into keys
    SelectCounters* counters;   // per ranking row, zeroed before `select_count`
    u64* set;                   // [ranking row][SELECT_CAP]
    u64* keys;                  // the rows' kept keys, from out_start[r], sorted descending
    u32* counts;                // per ranking row: keys written, tokens above -inf (from lists: 0xFFFFFFFF
                                // when one left keys out), survivors, FINISHED_*
    const RowParams* rows;      // per batch row
    const RankParams* ranks;    // per ranking row
    u64* cands;                 // [batch row][samples]: a row finished here overwrites its own
    const u64* lists;           // instead of `scaled`: the per-tile lists, [ranking row][slot][LIST_SLOTS]
    const ListHead* heads;      // [ranking row][slot]
    u32 v_rows;
    u32 vocab_offset;
    u32 samples;
    u32 slots;
};

__device__ __forceinline__ u64 rank_key(const float* y, u32 i, u32 vocab_offset) {
    const float v = y[i];
    return v == NEG_INF ? 0 : pack(v, vocab_offset + i);
}

__device__ __forceinline__ float ladder_delta(int j) {
    return __int_as_float((127 + (j >> 1) - 6) << 23) * ((j & 1) ? 1.41421354f : 1.0f);
}

// How many keys row `r` keeps, and the rung of its fast path (-1: the radix select).
struct Plan {
    u32 need;
    int rung;
};

// Called by whole warps: lane j reads rung j's count, so that the plan costs one round trip to
// memory, not one per rung.
__device__ __forceinline__ Plan plan_of(const SelectArgs& a, u32 r) {
    static_assert(SELECT_LADDER == 32, "a rung per lane");
    const SelectCounters& c = a.counters[r];
    Plan p;
    p.need = min(a.out_start[r + 1] - a.out_start[r], c.live);
    const u32 within = c.within[threadIdx.x & 31];
    const u32 fits = __ballot_sync(0xFFFFFFFFu, within >= p.need && within <= SELECT_CAP);
    p.rung = c.odd == 0 && fits ? __ffs(fits) - 1 : -1;
    return p;
}

// The token of this thread's k-th load in its block's chunk of THREADS · CHUNK_LOADS tokens.
template <int THREADS>
__device__ __forceinline__ u32 chunk_token(int k) {
    return blockIdx.x * THREADS * CHUNK_LOADS + k * THREADS + threadIdx.x;
}

// This thread's CHUNK_LOADS values of row `y` in its block's chunk, -inf past the row's end.
template <int THREADS>
__device__ __forceinline__ void load_chunk(const float* y, u32 v_rows, float (&v)[CHUNK_LOADS]) {
#pragma unroll
    for (int k = 0; k < CHUNK_LOADS; ++k) {
        const u32 i = chunk_token<THREADS>(k);
        v[k] = i < v_rows ? y[i] : NEG_INF;
    }
}

// Warp-wide sum, in lane 0.
__device__ __forceinline__ u32 warp_sum(u32 v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xFFFFFFFFu, v, o);
    return v;
}

// Adds one to hist[bin] for every lane of the warp with `count` set, one shared atomic per distinct
// bin: similar logits fall in a handful of bins (rungs, first digits), and same-address atomics of
// a whole block would serialise.
__device__ __forceinline__ void histogram_add(u32* hist, u32 bin, bool count) {
    const u32 lane = threadIdx.x & 31;
    const u32 peers = __match_any_sync(0xFFFFFFFFu, count ? bin : 0xFFFFFFFFu);
    if (count && lane == (u32)(__ffs(peers) - 1)) atomicAdd(&hist[bin], (u32)__popc(peers));
}

// Where the lanes whose `in` is set append to the array that `*counter` fills: the lane's slot,
// in lane order, from one atomic per warp (none when no lane appends). Called by whole warps.
__device__ __forceinline__ u32 warp_append(u32* counter, bool in) {
    const u32 ballot = __ballot_sync(0xFFFFFFFFu, in), lane = threadIdx.x & 31;
    if (!ballot) return 0;
    u32 first = 0;
    if (lane == 0) first = atomicAdd(counter, (u32)__popc(ballot));
    return __shfl_sync(0xFFFFFFFFu, first, 0) + __popc(ballot & ((1u << lane) - 1));
}

extern "C" __global__ void __launch_bounds__(CHUNK_THREADS) select_count(const SelectArgs a) {
    const u32 b = blockIdx.y, r = a.scaled_row[b];
    __shared__ float top;
    if (threadIdx.x < 32) {
        // M: the merged maximum.
        float m = NEG_INF;
        if (blockIdx.x == 0) {
            const RowNorm merged = merged_norm(a.parts, a.slots, b);
            if (threadIdx.x == 0) a.norms[b] = merged;
            m = merged.max;
        } else if (r != NO_MASK) {
            m = norms_max(a.parts, a.slots, b);
        }
        if (threadIdx.x == 0) top = m;
    }
    if (r == NO_MASK) return;
    // The rungs' thresholds M − δ_j, non-increasing in j; rungs[j]: the block's tokens whose first
    // rung (the smallest j with y ≥ M − δ_j) is j.
    __shared__ float threshold[SELECT_LADDER];
    __shared__ u32 rungs[SELECT_LADDER];
    __shared__ u32 sums[2][CHUNK_THREADS / 32];
    __syncthreads();
    if (threadIdx.x < SELECT_LADDER) {
        threshold[threadIdx.x] = top - ladder_delta(threadIdx.x);
        rungs[threadIdx.x] = 0;
    }
    __syncthreads();
    const float* y = a.scaled + (size_t)r * a.v_rows;
    u32 live = 0, odd = 0;
    float v[CHUNK_LOADS];
    load_chunk<CHUNK_THREADS>(y, a.v_rows, v);
#pragma unroll
    for (int k = 0; k < CHUNK_LOADS; ++k) {
        live += v[k] != NEG_INF;
        odd += v[k] != v[k] || v[k] == __int_as_float(0x7F800000);
        // The rungs a token misses form a prefix: their count, by bisection, is its first rung
        // (SELECT_LADDER: none). The comparison is select_gather's, so the counts are its sets'.
        u32 first = 0;
#pragma unroll
        for (u32 step = SELECT_LADDER; step > 0; step >>= 1) {
            if (first + step <= SELECT_LADDER && !(v[k] >= threshold[first + step - 1])) first += step;
        }
        histogram_add(rungs, first, first < SELECT_LADDER);
    }
    const u32 warp = threadIdx.x / 32;
    live = warp_sum(live);
    odd = warp_sum(odd);
    if ((threadIdx.x & 31) == 0) {
        sums[0][warp] = live;
        sums[1][warp] = odd;
    }
    __syncthreads();
    // One atomic per counter and block: within[j] counts the tokens whose first rung is ≤ j; then
    // live and odd (the first words of SelectCounters, in this order).
    if (threadIdx.x < SELECT_LADDER + 2) {
        u32 n = 0;
        if (threadIdx.x < SELECT_LADDER) {
            for (u32 j = 0; j <= threadIdx.x; ++j) n += rungs[j];
        } else {
            for (u32 w = 0; w < CHUNK_THREADS / 32; ++w) n += sums[threadIdx.x - SELECT_LADDER][w];
        }
        if (n) atomicAdd(reinterpret_cast<u32*>(&a.counters[r]) + threadIdx.x, n);
    }
}

// The radix select over the keys key_at(0) … key_at(n − 1) (0: none), `live` of them not 0:
// writes the `need` largest to `out`, returns how many it wrote.
template <typename KeyAt>
__device__ u32 radix_select(KeyAt key_at, u32 n, u32 live, u32 need, u64* __restrict__ out, u32* hist) {
    __shared__ u64 prefix, mask;
    __shared__ u32 left, written;
    __shared__ bool found;
    if (threadIdx.x == 0) {
        prefix = 0;
        mask = 0;
        left = need;
        written = 0;
        // Every live key is kept: the threshold is the smallest non-zero key.
        found = need == live;
        if (found) prefix = 1;
    }
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        if (found) break;
        const u64 p = prefix, m = mask;
        // Every thread runs the same number of iterations (the histogram is warp-collective), with
        // SELECT_LOADS loads in flight.
        for (u32 base = 0; base < n; base += SELECT_LOADS * blockDim.x) {
            u64 k[SELECT_LOADS];
#pragma unroll
            for (int j = 0; j < SELECT_LOADS; ++j) {
                const u32 i = base + j * blockDim.x + threadIdx.x;
                k[j] = i < n ? key_at(i) : 0;
            }
#pragma unroll
            for (int j = 0; j < SELECT_LOADS; ++j) {
                histogram_add(hist, (u32)(k[j] >> shift) & 255u, k[j] != 0 && (k[j] & m) == p);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            u32 above = 0;
            int b = 255;
            while (above + hist[b] < left) above += hist[b--];
            left -= above;
            prefix |= (u64)b << shift;
            mask |= (u64)255 << shift;
            // The whole bin is needed: every key from it up is kept, whatever its lower digits.
            found = hist[b] == left;
        }
        __syncthreads();
    }
    const u64 threshold = prefix;
    for (u32 i = threadIdx.x; i < n; i += blockDim.x) {
        const u64 k = key_at(i);
        if (k != 0 && k >= threshold) out[atomicAdd(&written, 1u)] = k;
    }
    __syncthreads();
    return written;
}

// Sorts `n` (a power of two) keys in shared memory, largest first.
__device__ void bitonic_sort_descending(u64* keys, u32 n) {
    for (u32 size = 2; size <= n; size <<= 1) {
        for (u32 stride = size / 2; stride > 0; stride >>= 1) {
            __syncthreads();
            for (u32 i = threadIdx.x; i < n / 2; i += blockDim.x) {
                const u32 lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
                const bool descending = (lo & size) == 0;
                const u64 a = keys[lo], b = keys[hi];
                if ((a < b) == descending) {
                    keys[lo] = b;
                    keys[hi] = a;
                }
            }
        }
    }
    __syncthreads();
}

// How many of the `n` keys of `keys` (shared) are larger than `key`: its place in descending
// order, the keys being distinct. Every thread reads the same key at once (a broadcast).
__device__ __forceinline__ u32 rank_of(u64 key, const u64* keys, u32 n) {
    u32 above = 0;
#pragma unroll 8
    for (u32 j = 0; j < n; ++j) above += keys[j] > key;
    return above;
}

// Sorts the first `filled` keys of `set` (shared, distinct), largest first. Up to one key per
// thread, each thread puts its key at its rank (three barriers: a bitonic sort takes one per
// stage, dozens); more take the bitonic sort, zero keys padding to a power of two.
__device__ __forceinline__ void sort_set(u64* set, u32 filled) {
    if (filled <= blockDim.x) {
        __syncthreads();
        const u64 key = threadIdx.x < filled ? set[threadIdx.x] : 0;
        const u32 rank = threadIdx.x < filled ? rank_of(key, set, filled) : 0;
        __syncthreads();
        if (threadIdx.x < filled) set[rank] = key;
        __syncthreads();
        return;
    }
    const u32 n = 1u << (32 - __clz(filled - 1));
    for (u32 i = filled + threadIdx.x; i < n; i += blockDim.x) set[i] = 0;
    bitonic_sort_descending(set, n);
}

// The `need` largest of ranking row `r`'s keys key_at(0) … key_at(n − 1) (`live` of them not 0) by
// the radix select, written to keys[] and sorted into `set` (shared); returns how many.
template <typename KeyAt>
__device__ u32 radix_into_set(const SelectArgs& a, u32 r, KeyAt key_at, u32 n, u32 live, u32 need, u64* set,
                              u32* hist) {
    u64* out = a.keys + a.out_start[r];
    const u32 written = radix_select(key_at, n, live, need, out, hist);
    for (u32 i = threadIdx.x; i < written; i += blockDim.x) set[i] = out[i];
    sort_set(set, written);
    return written;
}

// Finishes truncated row `b` from its whole row (finish_whole.cu). One block of WHOLE_THREADS.
__device__ void finish_whole_row(const SelectArgs& a, u32 b, u32 r);

// Row `b` (ranking row `r`) once its `written` most likely keys are sorted in `set` (shared,
// SELECT_CAP keys): they go to keys[], and a truncated row is finished (certified by its kept keys,
// or, with WHOLE, from its whole row: blocks of WHOLE_THREADS); `live`: the row's tokens of y above
// -inf (0xFFFFFFFF: more than any list keeps). The finishing's weights take the set's room past the
// kept keys. Every thread of the block calls it.
template <bool WHOLE>
__device__ void finish_keys(const SelectArgs& a, u32 b, u32 r, u64* set, u32 written, u32 live) {
    static_assert(SELECT_CAP >= 2 * SELECT_MAX_KEPT, "no room for the weights");
    double* weight = reinterpret_cast<double*>(set + SELECT_MAX_KEPT);
    const u32 capacity = a.out_start[r + 1] - a.out_start[r];
    u64* out = a.keys + a.out_start[r];
    for (u32 i = threadIdx.x; i < written; i += blockDim.x) out[i] = set[i];
    const RankParams q = a.ranks[r];
    int survivors = -1;
    if (q.truncated && written <= SELECT_MAX_KEPT) {
        survivors = finish_truncated(set, written, live <= capacity, q, row_of(a.rows[b]), a.samples,
                                     a.cands + (size_t)b * a.samples, &a.norms[b], weight);
    }
    if (threadIdx.x == 0) {
        a.counts[4 * r] = written;
        a.counts[4 * r + 1] = live;
        a.counts[4 * r + 2] = survivors < 0 ? 0 : (u32)survivors;
        a.counts[4 * r + 3] = survivors < 0 ? UNFINISHED : FINISHED_ON_DEVICE;
    }
    if constexpr (WHOLE) {
        if (q.truncated && survivors < 0) finish_whole_row(a, b, r);
    }
}

// Row `b` (ranking row `r`, plan `p`) once every block of its gathering pass is done: its kept
// keys sorted, then finish_keys. Every thread of the block calls it.
__device__ void top_keys(const SelectArgs& a, u32 b, u32 r, const Plan& p) {
    __shared__ u64 set[SELECT_CAP];
    __shared__ u32 hist[256];
    const u32 live = a.counters[r].live;
    u32 written = p.need;
    if (p.need > 0 && p.rung < 0) {
        const float* y = a.scaled + (size_t)r * a.v_rows;
        const auto key_at = [&](u32 i) { return rank_key(y, i, a.vocab_offset); };
        written = radix_into_set(a, r, key_at, a.v_rows, live, p.need, set, hist);
    } else if (p.need > 0) {
        // Other blocks appended these: read past L1.
        const u32 filled = min(__ldcg(&a.counters[r].filled), (u32)SELECT_CAP);
        for (u32 i = threadIdx.x; i < filled; i += blockDim.x) set[i] = __ldcg(&a.set[(size_t)r * SELECT_CAP + i]);
        sort_set(set, filled);
    }
    __syncthreads();
    finish_keys<true>(a, b, r, set, written, live);
}

extern "C" __global__ void __launch_bounds__(SELECT_THREADS) select_gather(const SelectArgs a) {
    const u32 b = blockIdx.y, r = a.scaled_row[b];
    if (r == NO_MASK) return;
    const Plan p = plan_of(a, r);
    if (p.need > 0 && p.rung >= 0) {
        const float threshold = a.norms[b].max - ladder_delta(p.rung);
        const float* y = a.scaled + (size_t)r * a.v_rows;
        u64* set = a.set + (size_t)r * SELECT_CAP;
        float v[CHUNK_LOADS];
        load_chunk<SELECT_THREADS>(y, a.v_rows, v);
        // Appends: one global atomic per warp and load with a key in the set.
#pragma unroll
        for (int k = 0; k < CHUNK_LOADS; ++k) {
            const bool in = v[k] >= threshold;
            const u32 at = warp_append(&a.counters[r].filled, in);
            if (in && at < SELECT_CAP) set[at] = pack(v[k], a.vocab_offset + chunk_token<SELECT_THREADS>(k));
        }
    }
    // The row's last block to get here finishes it: its appends, and every other block's, are
    // visible to it after the fences.
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        last = atomicAdd(&a.counters[r].arrived, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    top_keys(a, b, r, p);
}

// Threads of select_lists, and the slots of a launch that one block merges (src/kernels.rs
// `SELECT_LISTS_THREADS`, `SELECT_LISTS_MAX_SLOTS`).
#define LISTS_THREADS 256
#define LISTS_WARPS (LISTS_THREADS / 32)
#define LISTS_MAX_SLOTS 1024
#define LISTS_PER_THREAD (LISTS_MAX_SLOTS / LISTS_THREADS)

// The sum of every thread's `v` over the block of LISTS_THREADS, in every thread: warp sums, then
// the warps' in order. `scratch` holds a value per warp; calls alternate between two, so that one
// barrier a call keeps a call's writes from the reads of the call before.
__device__ __forceinline__ u32 lists_block_sum(u32 v, u32* scratch) {
    v = __reduce_add_sync(0xFFFFFFFFu, v);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    u32 sum = 0;
#pragma unroll
    for (int w = 0; w < LISTS_WARPS; ++w) sum += scratch[w];
    return sum;
}

// Each batch row's log-normaliser partials merged, then each ranking row's need most likely keys
// from its per-tile lists, finished as top_keys finishes them. One block of LISTS_THREADS per batch
// row: every call that ranks waits for this launch, and at one block per row its time is the
// length of one block's path, so the path is short and few warps walk it.
// (1) Each thread loads its slots' partials and list heads together. Block sums give the row's
//     maximum M, its keys kept and whether a list left keys out; then the merge Σ sum · exp(max − M)
//     in f64, summed in a fixed order (as merged_norm).
// (2) The floor: a word w with at least need of the lists' tops at or above w << 32 and not many
//     more (bit by bit from the top: a radix select of the need-th largest top's upper word,
//     stopping early). Need distinct keys are at or above it, so the need largest keys are.
// (3) The keys at or above the floor, from the lists whose top reaches it: a warp per two lists,
//     their loads in flight together; then sorted and finished.
extern "C" __global__ void __launch_bounds__(LISTS_THREADS, 1) select_lists(const SelectArgs a) {
    __shared__ u64 set[SELECT_CAP];
    __shared__ unsigned short lengths[LISTS_MAX_SLOTS], reaching[LISTS_MAX_SLOTS];
    __shared__ float warp_max[LISTS_WARPS];
    __shared__ double warp_mass[LISTS_WARPS];
    __shared__ u32 scratch[2][LISTS_WARPS];
    __shared__ u32 hist[256];
    __shared__ u32 filled, lists_reaching;
    const u32 b = blockIdx.y, r = a.scaled_row[b], t = threadIdx.x, lane = t & 31, warp = t / 32;
    const size_t row_slots = r == NO_MASK ? 0 : (size_t)r * a.slots;
    const ListHead* heads = a.heads + row_slots;
    const u64* lists = a.lists + row_slots * LIST_SLOTS;
    float2 part[LISTS_PER_THREAD];
    ListHead head[LISTS_PER_THREAD];
#pragma unroll
    for (int j = 0; j < LISTS_PER_THREAD; ++j) {
        const u32 s = t + j * LISTS_THREADS;
        part[j] = s < a.slots ? a.parts[(size_t)b * a.slots + s] : make_float2(NEG_INF, 0.0f);
        head[j] = s < a.slots && r != NO_MASK ? heads[s] : ListHead{0, 0, 0};
    }
    float m = NEG_INF;
    u32 mine_kept = 0, mine_compacted = 0, word[LISTS_PER_THREAD];
#pragma unroll
    for (int j = 0; j < LISTS_PER_THREAD; ++j) {
        m = fmaxf(m, part[j].x);
        mine_kept += head[j].kept;
        mine_compacted |= head[j].compacted;
        // A key's upper word orders its y; a real key's is never 0.
        word[j] = (u32)(head[j].top >> 32);
        lengths[t + j * LISTS_THREADS] = (unsigned short)head[j].kept;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
    if (lane == 0) warp_max[warp] = m;
    if (t == 0) {
        filled = 0;
        lists_reaching = 0;
    }
    const u32 kept = lists_block_sum(mine_kept, scratch[0]);
    const bool compacted = __syncthreads_or(mine_compacted);
    float top = NEG_INF;
#pragma unroll
    for (int w = 0; w < LISTS_WARPS; ++w) top = fmaxf(top, warp_max[w]);
    double mass = 0.0;
#pragma unroll
    for (int j = 0; j < LISTS_PER_THREAD; ++j) {
        if (top != NEG_INF && part[j].y != 0.0f) mass += (double)part[j].y * exp((double)part[j].x - (double)top);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mass += __shfl_xor_sync(0xFFFFFFFFu, mass, o);
    if (lane == 0) warp_mass[warp] = mass;
    // Not every live token is in a list once one was compacted: then there are more than any row
    // keeps. Every list holds the row's keys at or above its floor, which is never above the row's
    // keep-th largest (keep ≥ any row's need): the lists hold the need largest keys whichever way
    // `live` is known.
    const u32 live = compacted ? 0xFFFFFFFFu : kept;
    const u32 need = r == NO_MASK ? 0 : min(a.out_start[r + 1] - a.out_start[r], kept);
    // (2) The same in every thread: the loop ends together.
    u32 floor_word = 0;
    for (int bit = 31, call = 1; need > 0 && bit >= 0; --bit, call ^= 1) {
        const u32 up = floor_word | (1u << bit);
        u32 n = 0;
#pragma unroll
        for (int j = 0; j < LISTS_PER_THREAD; ++j) n += word[j] >= up;
        const u32 at_least = lists_block_sum(n, scratch[call]);
        if (at_least >= need) {
            floor_word = up;
            if (at_least <= need + need / 4) break;
        }
    }
    const u64 floor = max((u64)floor_word << 32, (u64)1);
    // The lists whose top reaches the floor, in `reaching`.
#pragma unroll
    for (int j = 0; j < LISTS_PER_THREAD; ++j) {
        const u32 s = t + j * LISTS_THREADS;
        const bool in = need > 0 && word[j] >= floor_word && head[j].kept > 0;
        const u32 at = warp_append(&lists_reaching, in);
        if (in) reaching[at] = (unsigned short)s;
    }
    __syncthreads();
    if (t == 0) {
        RowNorm merged = {top, 0, 0.0};
        for (u32 w = 0; top != NEG_INF && w < LISTS_WARPS; ++w) merged.sum += warp_mass[w];
        a.norms[b] = merged;
    }
    if (r == NO_MASK) return;
    // (3) Two lists a warp at a time.
    constexpr int PER_LANE = LIST_SLOTS / 32;
    for (u32 p = warp; p < lists_reaching; p += 2 * LISTS_WARPS) {
        u64 k[2][PER_LANE];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const u32 q = p + h * LISTS_WARPS;
            const u32 s = q < lists_reaching ? reaching[q] : 0, length = q < lists_reaching ? lengths[s] : 0;
#pragma unroll
            for (int j = 0; j < PER_LANE; ++j) {
                const u32 i = j * 32 + lane;
                k[h][j] = i < length ? lists[(size_t)s * LIST_SLOTS + i] : 0;
            }
        }
        // Few keys of a list reach the floor: an atomic each, no vote.
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
            for (int j = 0; j < PER_LANE; ++j) {
                if (k[h][j] < floor) continue;
                const u32 at = atomicAdd(&filled, 1u);
                if (at < SELECT_CAP) set[at] = k[h][j];
            }
        }
    }
    __syncthreads();
    u32 written = need;
    if (need > 0 && filled <= SELECT_CAP) {
        sort_set(set, filled);
    } else if (need > 0) {
        const auto key_at = [&](u32 i) {
            const u32 s = i / LIST_SLOTS;
            return i % LIST_SLOTS < lengths[s] ? lists[i] : 0;
        };
        written = radix_into_set(a, r, key_at, a.slots * LIST_SLOTS, kept, need, set, hist);
    }
    __syncthreads();
    // A listed row that truncates has top-k, which its keys always certify: no whole-row fallback.
    finish_keys<false>(a, b, r, set, written, live);
}

// ---- the device path's ranking tables ------------------------------------------------------------
//
// A caller's per-row truncation in device memory (`fs_truncation` of flashsampling.h; null: none)
// and top-N lists of `top_n` tokens (0: none) become the tables above: a row that truncates or asks
// for top-N ranks (scaled_row[b] = b) and keeps the longer of top_k keys (SELECT_MAX_KEPT without
// top-k) and top_n (out_start, summed by one thread), as `Truncation::list_length` of the core; one
// that does neither ranks nothing. A row that ranks without truncating is not `truncated`: its
// selection only keeps its keys. Values outside the domains of `Truncation::check` in the core flag
// the row `invalid` (FS_ROW_INVALID_PARAMS after decoding), which then ranks nothing; with `merge`,
// the flags of device_adjustments are kept. One block.
struct DeviceTruncation {
    u32 top_k;
    float top_p;
    float min_p;
};

extern "C" __global__ void __launch_bounds__(256) device_rank_rows(const DeviceTruncation* __restrict__ truncation,
                                                                 u32 top_n, u32 batch, u32 merge,
                                                                 u32* __restrict__ scaled_row,
                                                                 u32* __restrict__ out_start,
                                                                 RankParams* __restrict__ ranks,
                                                                 unsigned char* __restrict__ invalid) {
    for (u32 b = threadIdx.x; b < batch; b += blockDim.x) {
        const DeviceTruncation t = truncation ? truncation[b] : DeviceTruncation{0, 1.0f, 0.0f};
        const bool bad = t.top_k > SELECT_MAX_KEPT || !(t.top_p > 0.0f && t.top_p <= 1.0f) ||
                         !(t.min_p >= 0.0f && t.min_p <= 1.0f);
        const bool cuts = t.top_k > 0 || t.top_p < 1.0f || t.min_p > 0.0f;
        scaled_row[b] = !bad && (cuts || top_n > 0) ? b : NO_MASK;
        ranks[b] = RankParams{t.top_k, t.top_p, t.min_p, cuts ? 1u : 0u};
        invalid[b] = (merge && invalid[b]) || bad ? 1 : 0;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 at = 0;
        for (u32 b = 0; b < batch; ++b) {
            out_start[b] = at;
            const RankParams q = ranks[b];
            const u32 cut = q.truncated ? (q.top_k ? q.top_k : SELECT_MAX_KEPT) : 0;
            if (scaled_row[b] != NO_MASK) at += max(cut, top_n);
        }
        out_start[batch] = at;
    }
}

// ---- the device path's top-N lists --------------------------------------------------------------
//
// Each row's `n` most likely tokens and their logprobs, from the keys its selection kept (sorted
// descending from out_start[r]), as `SampleOutput::with_top_logprobs` of the core writes them: of a
// row finished on the device only its survivors; logprob = y − logZ in f64 with the row's final
// log-normaliser (its survivors' when truncated); past the kept keys token 0 and -inf; a row whose
// status is not OK tokens 0 and NaN. Runs after decode_candidates on the same stream (it reads the
// statuses).
extern "C" __global__ void __launch_bounds__(256) decode_top(const SelectArgs a,
                                                            const unsigned char* __restrict__ statuses,
                                                            u32* __restrict__ tokens, float* __restrict__ logprobs,
                                                            u32 batch, u32 n) {
    const size_t total = (size_t)batch * n;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)blockDim.x * gridDim.x) {
        const u32 b = (u32)(i / n), j = (u32)(i % n), r = a.scaled_row[b];
        u32 token = 0;
        float logprob = __int_as_float(0x7FC00000);
        if (statuses[b] == ROW_OK) {
            u32 kept = 0;
            if (r != NO_MASK) {
                const u32* c = a.counts + 4 * (size_t)r;
                kept = c[3] == FINISHED_ON_DEVICE ? min(c[0], c[2]) : c[0];
            }
            logprob = NEG_INF;
            if (j < kept) {
                const u64 key = a.keys[a.out_start[r] + j];
                const double log_z = (double)a.norms[b].max + log(a.norms[b].sum);
                token = key_token(key);
                logprob = (float)((double)unpack_score(key) - log_z);
            }
        }
        tokens[i] = token;
        logprobs[i] = logprob;
    }
}

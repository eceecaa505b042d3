// ---- the most likely tokens of ranking rows: selection over their scaled logits ---------------
//
// The `_ex` kernels write y = l̃ / T of the rows that rank their tokens (truncation, top-N); this
// keeps, per such row, the `length` largest keys pack(y, token) — the rank order of the core's
// `ranked.rs` (y descending, then token ascending; keys are unique). Masked tokens (y = -inf) are
// never ranked, as in the core. One block per row.
//
// Fast path: the row's maximum M, then how many tokens have y ≥ M − δ for a ladder of δ; the
// smallest δ whose set holds at least `need` tokens and fits in shared memory gives a set that
// contains the top `need` keys (every one of them has y ≥ the need-th largest y ≥ M − δ). The set
// is compacted into shared memory and sorted there. Rows where no δ fits (flat rows, NaN, +inf)
// take the radix select over all keys: 8-bit digits from the top, a histogram per pass over the
// keys that still match the chosen prefix, until the threshold key T has exactly `need` keys ≥ T.

#define SELECT_THREADS 1024
#define SELECT_LOADS 8
// Keys the fast path sorts in shared memory (32 KiB).
#define SELECT_CAP 4096
// δ = 2^(j − 6) for j < SELECT_LADDER: 1/64 … 512.
#define SELECT_LADDER 16

__device__ __forceinline__ u64 rank_key(const float* y, u32 i, u32 vocab_offset) {
    const float v = y[i];
    return v == NEG_INF ? 0 : pack(v, vocab_offset + i);
}

// Adds one to hist[bin] for every lane of the warp with `count` set, one shared atomic per distinct
// bin: the first digits of similar logits fall in a handful of bins, and same-address atomics of
// 1024 threads would serialise.
__device__ __forceinline__ void histogram_add(u32* hist, u32 bin, bool count) {
    const u32 lane = threadIdx.x & 31;
    const u32 peers = __match_any_sync(0xFFFFFFFFu, count ? bin : 0xFFFFFFFFu);
    if (count && lane == (u32)(__ffs(peers) - 1)) atomicAdd(&hist[bin], (u32)__popc(peers));
}

// The radix select over every key of row `y`: writes the `need` largest keys to `out`, returns
// how many it wrote.
__device__ u32 radix_select(const float* __restrict__ y, u32 v_rows, u32 vocab_offset, u32 live, u32 need,
                            u64* __restrict__ out, u32* hist) {
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
        for (u32 base = 0; base < v_rows; base += SELECT_LOADS * blockDim.x) {
            u64 k[SELECT_LOADS];
#pragma unroll
            for (int j = 0; j < SELECT_LOADS; ++j) {
                const u32 i = base + j * blockDim.x + threadIdx.x;
                k[j] = i < v_rows ? rank_key(y, i, vocab_offset) : 0;
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
    for (u32 i = threadIdx.x; i < v_rows; i += blockDim.x) {
        const u64 k = rank_key(y, i, vocab_offset);
        if (k != 0 && k >= threshold) out[atomicAdd(&written, 1u)] = k;
    }
    __syncthreads();
    return written;
}

// Block-wide sum of one value per thread (every thread gets it). `scratch`: 32 words.
__device__ __forceinline__ u32 block_sum(u32 v, u32* scratch) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    u32 total = 0;
    for (u32 w = 0; w < blockDim.x / 32; ++w) total += scratch[w];
    return total;
}

// Block-wide maximum (NaN ignored, as fmaxf does). `scratch`: 32 words.
__device__ __forceinline__ float block_max(float v, float* scratch) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    float m = NEG_INF;
    for (u32 w = 0; w < blockDim.x / 32; ++w) m = fmaxf(m, scratch[w]);
    return m;
}

__device__ __forceinline__ float ladder_delta(int j) { return __int_as_float((127 + j - 6) << 23); }

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

// scaled: [rows][v_rows]; out_start: rows + 1 offsets into keys (row r keeps out_start[r + 1] -
// out_start[r] keys at most); counts: per row (keys written, tokens of finite y).
extern "C" __global__ void __launch_bounds__(SELECT_THREADS) select_top_keys(const float* __restrict__ scaled,
                                                                             u32 v_rows, u32 vocab_offset,
                                                                             const u32* __restrict__ out_start,
                                                                             u64* __restrict__ keys,
                                                                             u32* __restrict__ counts) {
    __shared__ u64 set[SELECT_CAP];
    __shared__ u32 hist[256];
    __shared__ u32 scratch[32];
    __shared__ u32 filled;
    const float* y = scaled + (size_t)blockIdx.x * v_rows;
    const u32 length = out_start[blockIdx.x + 1] - out_start[blockIdx.x];
    u64* out = keys + out_start[blockIdx.x];

    float top = NEG_INF;
    u32 live = 0, odd = 0;
#pragma unroll SELECT_LOADS
    for (u32 i = threadIdx.x; i < v_rows; i += blockDim.x) {
        const float v = y[i];
        top = fmaxf(top, v);
        live += v != NEG_INF;
        odd += v != v || v == __int_as_float(0x7F800000);
    }
    top = block_max(top, reinterpret_cast<float*>(scratch));
    live = block_sum(live, scratch);
    odd = block_sum(odd, scratch);
    const u32 need = min(length, live);

    // How many tokens lie within δ_j of the maximum, for every rung of the ladder.
    u32 within[SELECT_LADDER];
#pragma unroll
    for (int j = 0; j < SELECT_LADDER; ++j) within[j] = 0;
    if (odd == 0 && need > 0) {
#pragma unroll SELECT_LOADS
        for (u32 i = threadIdx.x; i < v_rows; i += blockDim.x) {
            const float v = y[i];
#pragma unroll
            for (int j = 0; j < SELECT_LADDER; ++j) within[j] += v >= top - ladder_delta(j);
        }
    }
    int rung = -1;
#pragma unroll
    for (int j = 0; j < SELECT_LADDER; ++j) {
        within[j] = block_sum(within[j], scratch);
        if (rung < 0 && within[j] >= need && within[j] <= SELECT_CAP) rung = j;
    }

    u32 written = 0;
    if (need == 0) {
        written = 0;
    } else if (odd != 0 || rung < 0) {
        written = radix_select(y, v_rows, vocab_offset, live, need, out, hist);
    } else {
        const float threshold = top - ladder_delta(rung);
        if (threadIdx.x == 0) filled = 0;
        __syncthreads();
        // Compact the set: one shared atomic per warp and pass.
        const u32 lane = threadIdx.x & 31;
#pragma unroll SELECT_LOADS
        for (u32 base = 0; base < v_rows; base += blockDim.x) {
            const u32 i = base + threadIdx.x;
            const bool in = i < v_rows && y[i] >= threshold;
            const u32 ballot = __ballot_sync(0xFFFFFFFFu, in);
            u32 first = 0;
            if (lane == 0 && ballot) first = atomicAdd(&filled, (u32)__popc(ballot));
            first = __shfl_sync(0xFFFFFFFFu, first, 0);
            if (in) set[first + __popc(ballot & ((1u << lane) - 1))] = pack(y[i], vocab_offset + i);
        }
        __syncthreads();
        const u32 n = within[rung] <= 1 ? 1 : 1u << (32 - __clz(within[rung] - 1));
        for (u32 i = within[rung] + threadIdx.x; i < n; i += blockDim.x) set[i] = 0;
        bitonic_sort_descending(set, n);
        for (u32 i = threadIdx.x; i < need; i += blockDim.x) out[i] = set[i];
        written = need;
    }
    if (threadIdx.x == 0) {
        counts[2 * blockIdx.x] = written;
        counts[2 * blockIdx.x + 1] = live;
    }
}

// ---- the most likely tokens of ranking rows: radix select over their scaled logits -------------
//
// The `_ex` kernels write y = l̃ / T of the rows that rank their tokens (truncation, top-N); this
// keeps, per such row, the `length` largest keys pack(y, token) — the rank order of the core's
// `ranked.rs` (y descending, then token ascending; keys are unique). Masked tokens (y = -inf) are
// never ranked, as in the core. One block per row: 8-bit digits from the top, a histogram per
// pass over the keys that still match the chosen prefix, until the threshold key T is found with
// exactly `need` keys ≥ T; then one pass collects them (in no particular order: the host sorts).

#define SELECT_THREADS 1024
#define SELECT_LOADS 8

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

// scaled: [rows][v_rows]; out_start: rows + 1 offsets into keys (row r keeps out_start[r + 1] -
// out_start[r] keys at most); counts: per row (keys written, tokens of finite y).
extern "C" __global__ void __launch_bounds__(SELECT_THREADS) select_top_keys(const float* __restrict__ scaled,
                                                                             u32 v_rows, u32 vocab_offset,
                                                                             const u32* __restrict__ out_start,
                                                                             u64* __restrict__ keys,
                                                                             u32* __restrict__ counts) {
    __shared__ u32 hist[256];
    __shared__ u64 prefix, mask;
    __shared__ u32 live, need, written;
    __shared__ bool found;
    const float* y = scaled + (size_t)blockIdx.x * v_rows;
    const u32 length = out_start[blockIdx.x + 1] - out_start[blockIdx.x];
    if (threadIdx.x == 0) {
        prefix = 0;
        mask = 0;
        written = 0;
        found = false;
    }
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        if (found) break;
        const u64 p = prefix, m = mask;
        // Every thread runs the same number of iterations (the histogram is warp-collective), with
        // SELECT_LOADS loads in flight: one block per row is latency-bound otherwise.
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
            if (shift == 56) {
                // The first pass counts every live key.
                u32 total = 0;
                for (int b = 0; b < 256; ++b) total += hist[b];
                live = total;
                need = min(length, total);
            }
            if (need == live) {
                // Every live key is kept: the threshold is the smallest non-zero key.
                prefix = 1;
                found = true;
            } else {
                u32 above = 0;
                int b = 255;
                while (above + hist[b] < need) above += hist[b--];
                need -= above;
                prefix |= (u64)b << shift;
                mask |= (u64)255 << shift;
                // The whole bin is needed: every key from it up is kept, whatever its lower digits.
                found = hist[b] == need;
            }
        }
        __syncthreads();
    }
    const u64 threshold = prefix;
    u64* out = keys + out_start[blockIdx.x];
    for (u32 i = threadIdx.x; i < v_rows; i += blockDim.x) {
        const u64 k = rank_key(y, i, vocab_offset);
        if (k != 0 && k >= threshold) out[atomicAdd(&written, 1u)] = k;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        counts[2 * blockIdx.x] = written;
        counts[2 * blockIdx.x + 1] = live;
    }
}

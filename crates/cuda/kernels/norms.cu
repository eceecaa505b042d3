// ---- log-normalisers: each row's block partials merged on the device, and the logprobs -------
//
// The `_ex` kernels leave `(max y, Σ exp(y − max y))` per (row, block slot). One warp per row
// merges them: the maximum, then the rescaled sums in f64 (what `LogSumExp::merge` of the core
// computes pair by pair), lane l taking slots l, l + 32, … and a fixed tree over the lanes, so
// results are deterministic. The C ABI's CUDA path then turns them and the decoded candidates into
// logprobs on the device.

// `LogSumExp` of the core: f32 max, f64 sum; (-inf, 0) is empty.
struct RowNorm {
    float max;
    u32 pad;
    double sum;
};

// The largest maximum of row `row`'s `slots` partials (their merge's), in every lane of the
// calling warp. The loads are unrolled here and below so that a lane's slots are read together,
// not one round trip each (a selection waits for this merge).
__device__ float norms_max(const float2* __restrict__ parts, u32 slots, u32 row) {
    float m = NEG_INF;
#pragma unroll 8
    for (u32 s = threadIdx.x & 31; s < slots; s += 32) m = fmaxf(m, parts[(size_t)row * slots + s].x);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
    return m;
}

// Row `row`'s `slots` partials merged, in every lane of the calling warp: Σ sum · exp(max − M) in
// f64 over the maximum M, which is what merging them one by one computes (up to the last bits of
// f64), but with exponentials that do not wait for each other.
__device__ RowNorm merged_norm(const float2* __restrict__ parts, u32 slots, u32 row) {
    const float2* p = parts + (size_t)row * slots;
    RowNorm acc = {norms_max(parts, slots, row), 0, 0.0};
    if (acc.max == NEG_INF) return acc;
    const double top = (double)acc.max;
#pragma unroll 8
    for (u32 s = threadIdx.x & 31; s < slots; s += 32) {
        const float2 q = p[s];
        if (q.y != 0.0f) acc.sum += (double)q.y * exp((double)q.x - top);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc.sum += __shfl_xor_sync(0xFFFFFFFFu, acc.sum, o);
    return acc;
}

extern "C" __global__ void __launch_bounds__(256) merge_norms(const float2* __restrict__ parts, u32 slots,
                                                             u32 batch, RowNorm* __restrict__ out) {
    const u32 row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= batch) return;
    const RowNorm merged = merged_norm(parts, slots, row);
    if ((threadIdx.x & 31) == 0) out[row] = merged;
}

// Logprobs of the decoded samples and each row's log-normaliser, as `SampleOutput::with_logprobs`
// of the core computes them: a winner's y is its score less its noise (recomputed), and
// logprob = y − logZ in f64, with logZ = max + ln Σ. Rows whose status is not OK get NaN. Either
// output may be NULL. Runs after decode_candidates on the same stream (it reads the statuses).
extern "C" __global__ void __launch_bounds__(256) decode_logprobs(const u64* __restrict__ cands,
                                                                 const RowParams* __restrict__ rows,
                                                                 const RowNorm* __restrict__ norms,
                                                                 const unsigned char* __restrict__ statuses,
                                                                 float* __restrict__ logprobs,
                                                                 float* __restrict__ log_normalizer, u32 batch,
                                                                 u32 samples) {
    const size_t n = (size_t)batch * samples;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const u32 b = (u32)(i / samples), s = (u32)(i % samples);
        const double log_z = (double)norms[b].max + log(norms[b].sum);
        if (s == 0 && log_normalizer) log_normalizer[b] = (float)log_z;
        if (!logprobs) continue;
        if (statuses[b] != ROW_OK) {
            logprobs[i] = __int_as_float(0x7FC00000);
            continue;
        }
        const u64 c = cands[i];
        const u32 token = 0xFFFFFFFFu - (u32)c;
        const float score = unpack_score(c);
        const Row r = row_of(rows[b]);
        const float noise = r.greedy ? 0.0f : gumbel_from_word(word_of(noise_words(r, s, token), token));
        logprobs[i] = (float)((double)score - (double)noise - log_z);
    }
}

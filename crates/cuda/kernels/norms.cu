// ---- log-normalisers: each row's block partials merged on the device, and the logprobs -------
//
// The `_ex` kernels leave `(max y, Σ exp(y − max y))` per (row, block slot). One warp per row
// merges them in a fixed order (lane l takes slots l, l + 32, …; then a fixed tree over the lanes),
// in f64 as `LogSumExp::merge` of the core, so results are deterministic. The C ABI's CUDA path
// then turns them and the decoded candidates into logprobs on the device.

// `LogSumExp` of the core: f32 max, f64 sum; (-inf, 0) is empty.
struct RowNorm {
    float max;
    u32 pad;
    double sum;
};

__device__ __forceinline__ RowNorm norm_merge(RowNorm a, RowNorm b) {
    RowNorm r;
    r.pad = 0;
    r.max = fmaxf(a.max, b.max);
    if (r.max == NEG_INF) {
        r.sum = 0.0;
        return r;
    }
    const double top = (double)r.max;
    r.sum = (a.sum == 0.0 ? 0.0 : a.sum * exp((double)a.max - top)) +
            (b.sum == 0.0 ? 0.0 : b.sum * exp((double)b.max - top));
    return r;
}

// Row `row`'s `slots` partials merged, in every lane of the calling warp.
__device__ RowNorm merged_norm(const float2* __restrict__ parts, u32 slots, u32 row) {
    const u32 lane = threadIdx.x & 31;
    RowNorm acc = {NEG_INF, 0, 0.0};
    for (u32 s = lane; s < slots; s += 32) {
        const float2 p = parts[(size_t)row * slots + s];
        acc = norm_merge(acc, RowNorm{p.x, 0, (double)p.y});
    }
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        RowNorm other;
        other.max = __shfl_xor_sync(0xFFFFFFFFu, acc.max, o);
        other.pad = 0;
        other.sum = __shfl_xor_sync(0xFFFFFFFFu, acc.sum, o);
        // The lower lane's partial first, so that every lane folds the same way.
        acc = (lane & o) ? norm_merge(other, acc) : norm_merge(acc, other);
    }
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

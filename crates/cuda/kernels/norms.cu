// ---- log-normalisers: each row's block partials merged on the device ---------------------------
//
// The `_ex` kernels leave `(max y, Σ exp(y − max y))` per (row, block slot). One warp per row
// merges them in a fixed order (lane l takes slots l, l + 32, …; then a fixed tree over the lanes),
// in f64 as `LogSumExp::merge` of the core, so results are deterministic.

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

extern "C" __global__ void __launch_bounds__(256) merge_norms(const float2* __restrict__ parts, u32 slots,
                                                             u32 batch, RowNorm* __restrict__ out) {
    const u32 row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= batch) return;
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
    if (lane == 0) out[row] = acc;
}

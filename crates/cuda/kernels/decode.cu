// ---- candidates → tokens and per-row statuses, on the device ----------------------------------
//
// The C ABI's CUDA path ends here, so that an engine gets tokens without a copy to the host.
// Mirrors `SampleOutput::from_candidates` in the core; statuses are `fs_row_status` codes of
// flashsampling.h. Row parameters in device memory cannot be checked before the launch, so a bad
// temperature becomes the row's status here.

#define ROW_OK 0
#define ROW_ALL_MASKED 1
#define ROW_NAN_LOGITS 2
#define ROW_INVALID_PARAMS 3

__device__ __forceinline__ u32 candidate_status(u64 c) {
    const u32 ord = (u32)(c >> 32);
    const u32 neg_inf_ord = ~0xFF800000u;
    const u32 nan_ord = 0x7FC00000u | 0x80000000u;
    if (c == 0 || ord == neg_inf_ord) return ROW_ALL_MASKED;
    return ord == nan_ord ? ROW_NAN_LOGITS : ROW_OK;
}

__device__ __forceinline__ bool temperature_valid(float t) {
    return isfinite(t) && t >= 0.0f && (t == 0.0f || isfinite(__fdiv_rn(1.0f, t)));
}

// `invalid`: per row, nonzero where the call's own inputs in device memory were bad
// (device_adjustments); null when there are none.
extern "C" __global__ void __launch_bounds__(256) decode_candidates(const u64* __restrict__ cands,
                                                                 const RowParams* __restrict__ rows,
                                                                 const unsigned char* __restrict__ invalid,
                                                                 u32* __restrict__ tokens,
                                                                 unsigned char* __restrict__ statuses, u32 batch,
                                                                 u32 samples) {
    for (u32 b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += blockDim.x * gridDim.x) {
        const u64* row = cands + (size_t)b * samples;
        u32 status = ROW_OK;
        for (u32 s = 0; s < samples; ++s) status = max(status, candidate_status(row[s]));
        if (!temperature_valid(rows[b].temperature) || (invalid && invalid[b])) status = ROW_INVALID_PARAMS;
        // A row that is not OK gets token 0 everywhere: always in range, never a sample.
        for (u32 s = 0; s < samples; ++s) tokens[(size_t)b * samples + s] = status == ROW_OK ? 0xFFFFFFFFu - (u32)row[s] : 0;
        statuses[b] = (unsigned char)status;
    }
}

// ---- the device path's mask table ----------------------------------------------------------------
//
// The `_ex` kernels find row b's bitmask at `mask + starts[b]` (`Extras::mask_start`); a caller's
// `[batch][words]` device mask needs starts b · words, written here on the call's stream so that
// the hot kernels stay as they are.
extern "C" __global__ void __launch_bounds__(256) device_mask_rows(u32* __restrict__ starts, u32 batch, u32 words) {
    for (u32 b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += blockDim.x * gridDim.x) starts[b] = b * words;
}

// ---- the device path's logit adjustments -------------------------------------------------------
//
// A caller's per-row lists in device memory — CSR `offsets` over `batch` rows into `len` entries of
// global `tokens`, generation `counts` and `bias` (either may be null) — with per-row `penalties`
// (null: none) become the `_ex` kernels' tables: `starts` (batch + 1 offsets, clamped to `len`, so
// that no read leaves the caller's arrays) and `coef` (three per entry), as `RowTransform::new` of
// the core computes them, with its roundings: a token generated c > 0 times gets the scales
// (1/r, r) and adds −presence − c·frequency; then its bias is added. Nothing on the device can
// refuse the call, so bad input flags rows `invalid` (FS_ROW_INVALID_PARAMS after decoding): a
// row whose tokens do not increase or leave the vocabulary, whose bias or penalties are not finite
// (repetition ≤ 0), and every row when the offsets decrease or pass `len` (rows could then share
// entries). One block: the offsets are checked before any coefficient is written.
struct PenaltyParams {
    float repetition, presence, frequency;
};

extern "C" __global__ void __launch_bounds__(256) device_adjustments(
    const u32* __restrict__ offsets, const u32* __restrict__ tokens, const u32* __restrict__ counts,
    const float* __restrict__ bias, const PenaltyParams* __restrict__ penalties, u32 len, u32 batch, u32 vocab_size,
    u32* __restrict__ starts, float* __restrict__ coef, unsigned char* __restrict__ invalid) {
    bool ordered = true;
    for (u32 b = threadIdx.x; b <= batch; b += blockDim.x) {
        ordered = ordered && offsets[b] <= len && (b == batch || offsets[b] <= offsets[b + 1]);
        starts[b] = min(offsets[b], len);
    }
    ordered = __syncthreads_and(ordered);
    for (u32 b = threadIdx.x; b < batch; b += blockDim.x) {
        const PenaltyParams p = penalties ? penalties[b] : PenaltyParams{1.0f, 0.0f, 0.0f};
        bool bad = !ordered || !(isfinite(p.repetition) && p.repetition > 0.0f && isfinite(p.presence) &&
                                 isfinite(p.frequency));
        if (!bad) {
            const float inv_r = __fdiv_rn(1.0f, p.repetition);
            for (u32 e = offsets[b]; e < offsets[b + 1]; ++e) {
                const u32 t = tokens[e], c = counts ? counts[e] : 0u;
                const float v = bias ? bias[e] : 0.0f;
                bad = bad || t >= vocab_size || (e > offsets[b] && t <= tokens[e - 1]) || !isfinite(v);
                float pos = 1.0f, neg = 1.0f, added = 0.0f;
                if (c > 0) {
                    pos = inv_r;
                    neg = p.repetition;
                    added = __fsub_rn(-p.presence, __fmul_rn((float)c, p.frequency));
                }
                if (bias) added = __fadd_rn(added, v);
                coef[3 * (size_t)e] = pos;
                coef[3 * (size_t)e + 1] = neg;
                coef[3 * (size_t)e + 2] = added;
            }
        }
        invalid[b] = bad ? 1 : 0;
    }
}

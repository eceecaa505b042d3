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

extern "C" __global__ void __launch_bounds__(256) decode_candidates(const u64* __restrict__ cands,
                                                                 const RowParams* __restrict__ rows,
                                                                 u32* __restrict__ tokens,
                                                                 unsigned char* __restrict__ statuses, u32 batch,
                                                                 u32 samples) {
    for (u32 b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += blockDim.x * gridDim.x) {
        const u64* row = cands + (size_t)b * samples;
        u32 status = ROW_OK;
        for (u32 s = 0; s < samples; ++s) status = max(status, candidate_status(row[s]));
        if (!temperature_valid(rows[b].temperature)) status = ROW_INVALID_PARAMS;
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

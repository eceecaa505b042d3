// ---- sampling from materialised logits [B, V] (the unfused path) -------------------------------
//
// Grid (tiles of LOGIT_TILE tokens, rows, sample slices). The tile's logits are staged in shared memory as f32,
// then each sample of the row scans them and folds its winner into out[] with atomicMax.

#define LOGIT_TILE 1024

template <typename LT>
__device__ void logits_sample(const typename LT::T* __restrict__ logits, const RowParams* __restrict__ rows,
                              u64* __restrict__ out, u32 v_rows, u32 samples, u32 vocab_offset) {
    __shared__ float tile[LOGIT_TILE];
    const u32 b = blockIdx.y;
    const u32 tile0 = blockIdx.x * LOGIT_TILE;
    const u32 len = min((u32)LOGIT_TILE, v_rows - tile0);
    const typename LT::T* row = logits + (size_t)b * v_rows + tile0;
    for (u32 i = threadIdx.x; i < len; i += blockDim.x) tile[i] = LT::load1(row + i);
    __syncthreads();
    const Row r = row_of(rows[b]);
    if (samples == 1) {
        // One sample: split the tile over the block, then reduce.
        __shared__ u64 best[256];
        const u32 per = (len + blockDim.x - 1) / blockDim.x;
        const u32 start = min(len, threadIdx.x * per);
        const u32 count = min(len - start, per);
        best[threadIdx.x] = best_over(tile + start, 1, (int)count, vocab_offset + tile0 + start, r, 0);
        __syncthreads();
        for (u32 o = blockDim.x / 2; o > 0; o >>= 1) {
            if (threadIdx.x < o && best[threadIdx.x + o] > best[threadIdx.x]) best[threadIdx.x] = best[threadIdx.x + o];
            __syncthreads();
        }
        if (threadIdx.x == 0) atomicMax(&out[b], best[0]);
        return;
    }
    for (u32 s = blockIdx.z * blockDim.x + threadIdx.x; s < samples; s += blockDim.x * gridDim.z) {
        u64 c = best_over(tile, 1, (int)len, vocab_offset + tile0, r, s);
        atomicMax(&out[(size_t)b * samples + s], c);
    }
}

extern "C" __global__ void __launch_bounds__(256) logits_f32(const float* logits, const RowParams* rows, u64* out,
                                                           u32 v_rows, u32 samples, u32 vocab_offset) {
    logits_sample<F32>(logits, rows, out, v_rows, samples, vocab_offset);
}

extern "C" __global__ void __launch_bounds__(256) logits_bf16(const u16* logits, const RowParams* rows, u64* out,
                                                            u32 v_rows, u32 samples, u32 vocab_offset) {
    logits_sample<Bf16>(logits, rows, out, v_rows, samples, vocab_offset);
}

// ---- fused LM head + sampling on CUDA cores: every dtype pair, f32 FMAs --------------------------
//
// A block owns TILE consecutive vocabulary rows; each warp computes TOKENS_PER_WARP of them against
// R hidden rows at a time (register tile; R = 4 or 16, chosen by batch size), so each 16-byte W
// load feeds several rows and each H load several tokens. Logits land in shared memory, then every
// (row, sample) of the pass scans the tile and folds its winner into out[] with atomicMax (out
// must be zeroed first).
// EX (the `_ex` entry points): the tile's logits are constrained first, the scaled logits of ranking
// rows are written out, and the block writes its log-normaliser partial of every row to slot
// blockIdx.x.

#define WARPS 8
#define TOKENS_PER_WARP 4
#define TILE (WARPS * TOKENS_PER_WARP)
template <typename WT, typename HT, int R, bool EX>
__device__ void fused_sample(const typename WT::T* __restrict__ w, const typename HT::T* __restrict__ h,
                             const RowParams* __restrict__ rows, u64* __restrict__ out, u32 v_rows,
                             u32 dim, u32 batch, u32 samples, u32 vocab_offset, const Extras& ex) {
    __shared__ float logits[TILE][R];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const u32 tile0 = blockIdx.x * TILE;
    const u32 tok0 = tile0 + warp * TOKENS_PER_WARP;
    const u32 tile_len = min((u32)TILE, v_rows - tile0);

    for (u32 b0 = 0; b0 < batch; b0 += R) {
        const u32 nb = min((u32)R, batch - b0);
        float acc[TOKENS_PER_WARP][R];
#pragma unroll
        for (int k = 0; k < TOKENS_PER_WARP; ++k)
#pragma unroll
            for (int j = 0; j < R; ++j) acc[k][j] = 0.0f;

        for (u32 d = lane * 8; d < dim; d += 256) {
            float wv[TOKENS_PER_WARP][8];
#pragma unroll
            for (int k = 0; k < TOKENS_PER_WARP; ++k) {
                if (tok0 + k < v_rows) {
                    WT::load8(w + (size_t)(tok0 + k) * dim + d, wv[k]);
                } else {
#pragma unroll
                    for (int e = 0; e < 8; ++e) wv[k][e] = 0.0f;
                }
            }
#pragma unroll
            for (int j = 0; j < R; ++j) {
                if ((u32)j < nb) {
                    float hv[8];
                    HT::load8(h + (size_t)(b0 + j) * dim + d, hv);
#pragma unroll
                    for (int k = 0; k < TOKENS_PER_WARP; ++k)
#pragma unroll
                        for (int e = 0; e < 8; ++e) acc[k][j] = fmaf(wv[k][e], hv[e], acc[k][j]);
                }
            }
        }
#pragma unroll
        for (int k = 0; k < TOKENS_PER_WARP; ++k)
#pragma unroll
            for (int j = 0; j < R; ++j) {
                if ((u32)j < nb) {
                    float s = acc[k][j];
#pragma unroll
                    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
                    if (lane == 0) logits[warp * TOKENS_PER_WARP + k][j] = s;
                }
            }
        __syncthreads();

        if constexpr (EX) {
            for (u32 j = threadIdx.x; j < nb; j += blockDim.x) {
                const float inv_t = row_of(rows[b0 + j]).inv_t;
                constrain(&logits[0][j], R, (int)tile_len, vocab_offset + tile0, b0 + j, ex);
                if (blockIdx.y == 0) {
                    write_scaled(&logits[0][j], R, (int)tile_len, tile0, b0 + j, v_rows, inv_t, ex);
                    if (ex.norms) {
                        float2* row_norms = ex.norms + (size_t)(b0 + j) * ex.norm_slots;
                        row_norms[blockIdx.x] = lse_of(&logits[0][j], R, (int)tile_len, inv_t);
                        empty_slots_past_grid(row_norms, ex.norm_slots, make_float2(NEG_INF, 0.0f), 0, 1);
                    }
                }
            }
            __syncthreads();
        }

        // gridDim.y splits many samples over blocks (each recomputes the tile's small dot products).
        for (u32 p = blockIdx.y * blockDim.x + threadIdx.x; p < nb * samples; p += blockDim.x * gridDim.y) {
            const u32 j = p / samples, s = p % samples;
            const Row r = row_of(rows[b0 + j]);
            u64 best = best_over(&logits[0][j], R, (int)tile_len, vocab_offset + tile0, r, s);
            atomicMax(&out[(size_t)(b0 + j) * samples + s], best);
        }
        __syncthreads();
    }
}

#define FUSED_R(WN, HN, R)                                                                         \
    extern "C" __global__ void __launch_bounds__(WARPS * 32) fused_##WN##_##HN##_r##R(              \
        const WN::T* w, const HN::T* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim,         \
        u32 batch, u32 samples, u32 vocab_offset) {                                                \
        fused_sample<WN, HN, R, false>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, Extras{}); \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(WARPS * 32) fused_##WN##_##HN##_r##R##_ex(         \
        const WN::T* w, const HN::T* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim,         \
        u32 batch, u32 samples, u32 vocab_offset, Extras ex) {                                     \
        fused_sample<WN, HN, R, true>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, ex); \
    }
#define FUSED(WN, HN) FUSED_R(WN, HN, 4) FUSED_R(WN, HN, 16)

FUSED(Bf16, Bf16)
FUSED(Bf16, F16)
FUSED(Bf16, F32)
FUSED(F16, Bf16)
FUSED(F16, F16)
FUSED(F16, F32)
FUSED(F32, Bf16)
FUSED(F32, F16)
FUSED(F32, F32)


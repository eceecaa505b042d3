// FlashSampling kernels (DESIGN.md §3): fused LM head + Gumbel-max, and Gumbel-max over given logits.
// Compiled at run time by NVRTC; no headers, so bf16/f16 are converted by hand.
// Precise math only (no fast-math): fast logs bias the tail of the noise.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned short u16;

// Per-row parameters, laid out as `RowArgs` in src/launch.rs (24 bytes).
struct RowArgs {
    u64 seed;
    u64 offset;
    float inv_t;
    u32 greedy;
};

// ---- element conversion -------------------------------------------------------------------------

__device__ __forceinline__ float bf16_to_f32(u16 x) { return __uint_as_float(((u32)x) << 16); }

__device__ __forceinline__ float f16_to_f32(u16 x) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
    return f;
}

// Eight consecutive elements starting at `p` (16-byte aligned for 16-bit types, 32 for f32).
struct Bf16 {
    typedef u16 T;
    static __device__ __forceinline__ void load8(const T* p, float* out) {
        uint4 v = *reinterpret_cast<const uint4*>(p);
        u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            out[2 * i] = __uint_as_float(w[i] << 16);
            out[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
        }
    }
    static __device__ __forceinline__ float load1(const T* p) { return bf16_to_f32(*p); }
};

struct F16 {
    typedef u16 T;
    static __device__ __forceinline__ void load8(const T* p, float* out) {
        uint4 v = *reinterpret_cast<const uint4*>(p);
        u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            out[2 * i] = f16_to_f32((u16)(w[i] & 0xFFFFu));
            out[2 * i + 1] = f16_to_f32((u16)(w[i] >> 16));
        }
    }
    static __device__ __forceinline__ float load1(const T* p) { return f16_to_f32(*p); }
};

struct F32 {
    typedef float T;
    static __device__ __forceinline__ void load8(const T* p, float* out) {
        float4 a = *reinterpret_cast<const float4*>(p);
        float4 b = *reinterpret_cast<const float4*>(p + 4);
        out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
        out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
    }
    static __device__ __forceinline__ float load1(const T* p) { return *p; }
};

// ---- noise (DESIGN.md §3.2) ---------------------------------------------------------------------

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, u32 k0, u32 k1) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        u32 hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        u32 hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

__device__ __forceinline__ float gumbel_from_word(u32 word) {
    float w = __fmul_rn(__fadd_rn(__uint2float_rn(word), 0.5f), 2.3283064365386963e-10f);
    w = fminf(w, 1.0f - 5.9604644775390625e-08f);
    float e = -log1pf(-w);
    return -logf(e);
}

// The four noise words of token group `t >> 2` for (row, sample).
__device__ __forceinline__ uint4 noise_words(const RowArgs& r, u32 sample, u32 t) {
    uint4 c = make_uint4(t >> 2, sample, (u32)r.offset, (u32)(r.offset >> 32));
    return philox4x32_10(c, (u32)r.seed, (u32)(r.seed >> 32));
}

__device__ __forceinline__ u32 word_of(uint4 w, u32 t) {
    u32 i = t & 3u;
    return i == 0 ? w.x : i == 1 ? w.y : i == 2 ? w.z : w.w;
}

// ---- candidates (DESIGN.md §3.4) ----------------------------------------------------------------

__device__ __forceinline__ u64 pack(float x, u32 token) {
    u32 bits = (x != x) ? 0x7FC00000u : __float_as_uint(x);
    u32 ord = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ((u64)ord << 32) | (u64)(0xFFFFFFFFu - token);
}

__device__ __forceinline__ float score(float l, const RowArgs& r, u32 word) {
    if (r.greedy) return l;
    return __fadd_rn(__fmul_rn(l, r.inv_t), gumbel_from_word(word));
}

// Best candidate of one (row, sample) over `count` logits `logits[i * stride]` of global tokens
// `first + i`, one Philox evaluation per group of four tokens.
__device__ __forceinline__ u64 best_over(const float* logits, int stride, int count, u32 first,
                                         const RowArgs& r, u32 sample) {
    u64 best = 0;
    uint4 words = make_uint4(0, 0, 0, 0);
    u32 group = 0xFFFFFFFFu;
    for (int i = 0; i < count; ++i) {
        u32 t = first + (u32)i;
        u32 word = 0;
        if (!r.greedy) {
            if ((t >> 2) != group) {
                group = t >> 2;
                words = noise_words(r, sample, t);
            }
            word = word_of(words, t);
        }
        u64 c = pack(score(logits[i * stride], r, word), t);
        best = c > best ? c : best;
    }
    return best;
}

// ---- fused LM head + sampling (bandwidth path) --------------------------------------------------
//
// A block owns TILE consecutive vocabulary rows; each warp computes TOKENS_PER_WARP of them against
// R hidden rows at a time (register tile; R = 4 or 16, chosen by batch size), so each 16-byte W
// load feeds several rows and each H load several tokens. Logits land in shared memory, then every (row, sample) of the pass
// scans the tile and folds its winner into out[] with atomicMax (out must be zeroed first).

#define WARPS 8
#define TOKENS_PER_WARP 4
#define TILE (WARPS * TOKENS_PER_WARP)
template <typename WT, typename HT, int R>
__device__ void fused_sample(const typename WT::T* __restrict__ w, const typename HT::T* __restrict__ h,
                             const RowArgs* __restrict__ rows, u64* __restrict__ out, u32 v_rows,
                             u32 dim, u32 batch, u32 samples, u32 vocab_offset) {
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

        // gridDim.y splits many samples over blocks (each recomputes the tile's small dot products).
        for (u32 p = blockIdx.y * blockDim.x + threadIdx.x; p < nb * samples; p += blockDim.x * gridDim.y) {
            const u32 j = p / samples, s = p % samples;
            const RowArgs r = rows[b0 + j];
            u64 best = best_over(&logits[0][j], R, (int)tile_len, vocab_offset + tile0, r, s);
            atomicMax(&out[(size_t)(b0 + j) * samples + s], best);
        }
        __syncthreads();
    }
}

#define FUSED_R(WN, HN, R)                                                                         \
    extern "C" __global__ void __launch_bounds__(WARPS * 32) fused_##WN##_##HN##_r##R(              \
        const WN::T* w, const HN::T* h, const RowArgs* rows, u64* out, u32 v_rows, u32 dim,         \
        u32 batch, u32 samples, u32 vocab_offset) {                                                \
        fused_sample<WN, HN, R>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset);       \
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

// ---- sampling from materialised logits [B, V] (the unfused path) -------------------------------
//
// Grid (tiles of LOGIT_TILE tokens, rows, sample slices). The tile's logits are staged in shared memory as f32,
// then each sample of the row scans them and folds its winner into out[] with atomicMax.

#define LOGIT_TILE 1024

template <typename LT>
__device__ void logits_sample(const typename LT::T* __restrict__ logits, const RowArgs* __restrict__ rows,
                              u64* __restrict__ out, u32 v_rows, u32 samples, u32 vocab_offset) {
    __shared__ float tile[LOGIT_TILE];
    const u32 b = blockIdx.y;
    const u32 tile0 = blockIdx.x * LOGIT_TILE;
    const u32 len = min((u32)LOGIT_TILE, v_rows - tile0);
    const typename LT::T* row = logits + (size_t)b * v_rows + tile0;
    for (u32 i = threadIdx.x; i < len; i += blockDim.x) tile[i] = LT::load1(row + i);
    __syncthreads();
    const RowArgs r = rows[b];
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

extern "C" __global__ void __launch_bounds__(256) logits_f32(const float* logits, const RowArgs* rows, u64* out,
                                                           u32 v_rows, u32 samples, u32 vocab_offset) {
    logits_sample<F32>(logits, rows, out, v_rows, samples, vocab_offset);
}

extern "C" __global__ void __launch_bounds__(256) logits_bf16(const u16* logits, const RowArgs* rows, u64* out,
                                                            u32 v_rows, u32 samples, u32 vocab_offset) {
    logits_sample<Bf16>(logits, rows, out, v_rows, samples, vocab_offset);
}

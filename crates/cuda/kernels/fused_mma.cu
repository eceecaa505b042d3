// ---- fused LM head + sampling on tensor cores (mma.sync): the bandwidth path for bf16 and f16 ----
//
// W and H of one 16-bit type. Logits = W · Hᵀ with W as the mma's A operand (16 tokens) and H as its
// B operand (8 hidden rows per n-tile, NT n-tiles: up to 8·NT rows per launch).
//
// - Persistent grid: block i owns the contiguous 16-token tiles [tiles·i/grid, tiles·(i+1)/grid), so
//   every SM streams the same share of W, to within one tile.
// - A block step gives each of its MMA_WARPS warps MT tiles; the warp runs the K loop alone for W,
//   which goes straight from global memory into A fragments (16-byte loads, one chunk ahead).
// - H is shared: each MMA_KC chunk of all rows is staged in shared memory by cp.async, MMA_STAGES
//   deep, and read by every warp.
// - Tuned on an H100 with tools/tune_mma.py (docs/PERFORMANCE.md): the L2 256-byte prefetch on W
//   loads and 4 H stages helped; more W buffers, 16 warps, or 2 tiles per warp at 8 n-tiles did not.
// - Inside each 32-element K block the dot product's order is permuted the same way for W and H:
//   thread t holds elements 8t … 8t+7 of its rows, so its W and H loads are 16 contiguous bytes and
//   H's shared-memory reads are conflict-free.
// - Epilogue: each tile's logits pass through a small per-warp scratch so that a lane scores four
//   consecutive tokens of one (row, sample) with one Philox evaluation; the warp's best candidate per
//   (row, sample) is folded into out[] with atomicMax (out must be zeroed first).
// - EX (the `_ex` entry points): the scratch logits are constrained before sampling, the scaled
//   logits of ranking rows are written out, and each warp folds every tile's log-normaliser
//   partial into its own per-row partials in shared memory; the block merges them in warp order
//   and writes them to slot blockIdx.x.

// Tunable at compile time (tools/tune_mma.py); src/kernels.rs mirrors the defaults.
#ifndef MMA_WARPS
#define MMA_WARPS 8
#endif
#ifndef MMA_KC
#define MMA_KC 64
#endif
#ifndef MMA_STAGES
#define MMA_STAGES 4
#endif
// W register buffers: chunks in flight per warp while one multiplies.
#ifndef MMA_W_BUFFERS
#define MMA_W_BUFFERS 2
#endif
#ifndef MMA_W_LOAD
#define MMA_W_LOAD "ld.global.nc.L1::no_allocate.L2::256B.v4.u32"
#endif
// Tiles per warp per step of the 8- and 16-n-tile variants.
#ifndef MMA_MT8
#define MMA_MT8 1
#endif
#ifndef MMA_MT16
#define MMA_MT16 2
#endif
// Floats per row of the epilogue scratch: 16 tokens + 4 of padding keep writes and float4 reads
// free of bank conflicts.
#define MMA_SCRATCH_STRIDE 20

template <typename E>
__device__ __forceinline__ void mma16816(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1);

template <>
__device__ __forceinline__ void mma16816<Bf16>(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma16816<F16>(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// W is read once: keep it out of L1, and have L2 fetch 256 bytes per miss (the next chunk of the
// row arrives with this one: measured 7% faster at B = 1 on an H100).
__device__ __forceinline__ uint4 load_streaming(const u16* p) {
    uint4 v;
    asm(MMA_W_LOAD " {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// 16 bytes global → shared, zero-filled when `bytes` is 0.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, u32 bytes) {
    u32 d = (u32)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// The block's shared state for one launch shape.
template <int NT, bool EX>
struct MmaShared {
    static constexpr int ROWS = 8 * NT;
    // H chunks: [stage][K block of 32][row][32 elements].
    static constexpr int H_ELEMS = MMA_STAGES * (MMA_KC / 32) * ROWS * 32;
    static constexpr int SCRATCH_FLOATS = MMA_WARPS * 8 * MMA_SCRATCH_STRIDE;
    // EX: each warp's log-normaliser partials, [warp][row].
    static constexpr int NORMS = EX ? MMA_WARPS * ROWS : 0;
    static constexpr int BYTES = H_ELEMS * 2 + SCRATCH_FLOATS * 4 + NORMS * 8;
};

// Stages chunk `c` of H (rows [0, batch), all zero beyond `batch` and `dim`) into its stage.
template <int NT>
__device__ __forceinline__ void stage_h(u16* hs, const u16* __restrict__ h, u32 c, u32 dim, u32 batch) {
    constexpr int ROWS = 8 * NT, PIECES = MMA_KC / 8;
    u16* stage = hs + (c % MMA_STAGES) * (MMA_KC / 32) * ROWS * 32;
    for (int i = threadIdx.x; i < ROWS * PIECES; i += MMA_WARPS * 32) {
        const u32 n = i / PIECES, q = i % PIECES, k = c * MMA_KC + 8 * q;
        const bool live = n < batch && k < dim;
        cp_async16(stage + ((q / 4) * ROWS + n) * 32 + (q % 4) * 8, live ? h + (size_t)n * dim + k : h, live ? 16 : 0);
    }
    cp_async_commit();
}

// This thread's A fragments for chunk `c` of its warp's MT tiles: for tile m, half r (token g or
// g + 8) and K block j, the 16 bytes at elements 32j + 8t of the chunk. Zero past V, D or the range.
template <int MT>
__device__ __forceinline__ void load_w(u32 (&a)[MT][2][MMA_KC / 32][4], const u16* __restrict__ w, u32 tile0,
                                       u32 tiles_end, u32 c, u32 v_rows, u32 dim) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const u32 tok = (tile0 + m) * 16 + g + 8 * r;
            const bool row_live = tile0 + m < tiles_end && tok < v_rows;
#pragma unroll
            for (int j = 0; j < MMA_KC / 32; ++j) {
                const u32 k = c * MMA_KC + 32 * j + 8 * t;
                uint4 v = make_uint4(0, 0, 0, 0);
                if (row_live && k < dim) v = load_streaming(w + (size_t)tok * dim + k);
                a[m][r][j][0] = v.x;
                a[m][r][j][1] = v.y;
                a[m][r][j][2] = v.z;
                a[m][r][j][3] = v.w;
            }
        }
}

// acc += this chunk's products: two m16n8k16 per K block of 32, per tile and n-tile.
template <typename E, int NT, int MT>
__device__ __forceinline__ void mma_chunk(float (&acc)[MT][NT][4], const u32 (&a)[MT][2][MMA_KC / 32][4],
                                          const u16* hs, u32 c) {
    constexpr int ROWS = 8 * NT;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const u16* stage = hs + (c % MMA_STAGES) * (MMA_KC / 32) * ROWS * 32;
#pragma unroll
    for (int j = 0; j < MMA_KC / 32; ++j)
#pragma unroll
        for (int n = 0; n < NT; ++n) {
            const uint4 b = *reinterpret_cast<const uint4*>(stage + (j * ROWS + n * 8 + g) * 32 + 8 * t);
#pragma unroll
            for (int m = 0; m < MT; ++m) {
                mma16816<E>(acc[m][n], a[m][0][j][0], a[m][1][j][0], a[m][0][j][1], a[m][1][j][1], b.x, b.y);
                mma16816<E>(acc[m][n], a[m][0][j][2], a[m][1][j][2], a[m][0][j][3], a[m][1][j][3], b.z, b.w);
            }
        }
}

// One K chunk for the whole block: wait for its H stage, start staging a later one, multiply.
template <typename E, int NT, int MT>
__device__ __forceinline__ void k_step(float (&acc)[MT][NT][4], const u32 (&a)[MT][2][MMA_KC / 32][4], u16* hs,
                                       const u16* __restrict__ h, u32 c, u32 chunks, u32 dim, u32 batch) {
    cp_async_wait<MMA_STAGES - 2>();
    // Every warp is done with chunk c - 1, whose stage the next line refills.
    __syncthreads();
    if (c + MMA_STAGES - 1 < chunks) {
        stage_h<NT>(hs, h, c + MMA_STAGES - 1, dim, batch);
    } else {
        cp_async_commit();
    }
    mma_chunk<E, NT, MT>(acc, a, hs, c);
}

// Folds one tile's logits (16 tokens × the 8 rows of n-tile `n`) into out[]: the tile's best
// candidate per (row, sample).
template <bool EX>
__device__ __forceinline__ void tile_epilogue(const float (&c)[4], float* scratch, u32 tile, u32 n,
                                              const RowParams* __restrict__ rows, u64* __restrict__ out, u32 v_rows,
                                              u32 batch, u32 samples, u32 vocab_offset, const Extras& ex,
                                              float2* norms) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    __syncwarp();
    scratch[(2 * t) * MMA_SCRATCH_STRIDE + g] = c[0];
    scratch[(2 * t + 1) * MMA_SCRATCH_STRIDE + g] = c[1];
    scratch[(2 * t) * MMA_SCRATCH_STRIDE + g + 8] = c[2];
    scratch[(2 * t + 1) * MMA_SCRATCH_STRIDE + g + 8] = c[3];
    __syncwarp();
    if constexpr (EX) {
        // Lane = row g of the n-tile × tokens 4t … 4t+3 of the tile.
        const u32 row = n * 8 + g, tok = tile * 16 + 4 * t;
        const u32 count = tok < v_rows ? min(4u, v_rows - tok) : 0;
        float* l = scratch + g * MMA_SCRATCH_STRIDE + 4 * t;
        float2 part = make_float2(NEG_INF, 0.0f);
        if (row < batch && count > 0) {
            const float inv_t = row_of(rows[row]).inv_t;
            constrain(l, 1, (int)count, vocab_offset + tok, row, ex);
            write_scaled(l, 1, (int)count, tok, row, v_rows, inv_t, ex);
            if (ex.norms) part = lse_of(l, 1, (int)count, inv_t);
        }
        if (ex.norms) {
#pragma unroll
            for (int o = 1; o < 4; o <<= 1) {
                const float2 other = make_float2(__shfl_xor_sync(0xFFFFFFFFu, part.x, o),
                                                 __shfl_xor_sync(0xFFFFFFFFu, part.y, o));
                part = lse_merge(part, other);
            }
            if (t == 0 && row < batch) norms[row] = lse_merge(norms[row], part);
        }
        __syncwarp();
    }
    const u32 live_rows = min(8u, batch - min(batch, n * 8));
    const u32 pairs = live_rows * samples;
    // Lane = quarter q (tokens 4q … 4q+3) × slot; the eight slots walk the (row, sample) pairs.
    const u32 q = lane >> 3, slot = lane & 7;
    const u32 tok = tile * 16 + 4 * q;
    const u32 count = tok < v_rows ? min(4u, v_rows - tok) : 0;
    for (u32 p0 = 0; p0 < pairs; p0 += 8) {
        const u32 p = p0 + slot, row = p / samples, s = p % samples;
        u64 best = 0;
        if (p < pairs && count > 0) {
            best = best_over(scratch + row * MMA_SCRATCH_STRIDE + 4 * q, 1, (int)count, vocab_offset + tok,
                             row_of(rows[n * 8 + row]), s);
        }
        best = max(best, __shfl_xor_sync(0xFFFFFFFFu, best, 8));
        best = max(best, __shfl_xor_sync(0xFFFFFFFFu, best, 16));
        if (q == 0 && p < pairs && best != 0) atomicMax(&out[(size_t)(n * 8 + row) * samples + s], best);
    }
}

template <typename E, int NT, int MT, bool EX>
__device__ void fused_mma(const u16* __restrict__ w, const u16* __restrict__ h, const RowParams* __restrict__ rows,
                          u64* __restrict__ out, u32 v_rows, u32 dim, u32 batch, u32 samples, u32 vocab_offset,
                          const Extras& ex) {
    typedef MmaShared<NT, EX> Shared;
    extern __shared__ __align__(16) unsigned char smem[];
    u16* hs = reinterpret_cast<u16*>(smem);
    const int warp = threadIdx.x >> 5;
    float* scratch = reinterpret_cast<float*>(smem + Shared::H_ELEMS * 2) + warp * 8 * MMA_SCRATCH_STRIDE;
    float2* all_norms = reinterpret_cast<float2*>(smem + Shared::H_ELEMS * 2 + Shared::SCRATCH_FLOATS * 4);
    float2* norms = all_norms + warp * Shared::ROWS;
    if constexpr (EX) {
        for (int i = threadIdx.x & 31; i < Shared::ROWS; i += 32) norms[i] = make_float2(NEG_INF, 0.0f);
    }

    const u32 tiles = (v_rows + 15) / 16;
    const u32 first = (u32)((u64)tiles * blockIdx.x / gridDim.x);
    const u32 end = (u32)((u64)tiles * (blockIdx.x + 1) / gridDim.x);
    const u32 chunks = (dim + MMA_KC - 1) / MMA_KC;

    for (u32 step = first; step < end; step += MMA_WARPS * MT) {
        const u32 tile0 = step + warp * MT;
        float acc[MT][NT][4];
#pragma unroll
        for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int n = 0; n < NT; ++n)
#pragma unroll
                for (int i = 0; i < 4; ++i) acc[m][n][i] = 0.0f;

#pragma unroll
        for (int s = 0; s < MMA_STAGES - 1; ++s) {
            if ((u32)s < chunks) {
                stage_h<NT>(hs, h, s, dim, batch);
            } else {
                cp_async_commit();
            }
        }
        // MMA_W_BUFFERS register buffers for W: later chunks' loads are in flight while one multiplies.
        // The inner loop is unrolled, so every buffer index is a compile-time constant.
        u32 a[MMA_W_BUFFERS][MT][2][MMA_KC / 32][4];
#pragma unroll
        for (int i = 0; i < MMA_W_BUFFERS - 1; ++i) load_w<MT>(a[i], w, tile0, end, i, v_rows, dim);
        for (u32 c0 = 0; c0 < chunks; c0 += MMA_W_BUFFERS) {
#pragma unroll
            for (int i = 0; i < MMA_W_BUFFERS; ++i) {
                if (c0 + i < chunks) {
                    load_w<MT>(a[(i + MMA_W_BUFFERS - 1) % MMA_W_BUFFERS], w, tile0, end, c0 + i + MMA_W_BUFFERS - 1,
                               v_rows, dim);
                    k_step<E, NT, MT>(acc, a[i], hs, h, c0 + i, chunks, dim, batch);
                }
            }
        }
        cp_async_wait<0>();
        // The next step's first stages overwrite what slow warps may still be reading.
        __syncthreads();

#pragma unroll
        for (int m = 0; m < MT; ++m) {
            if (tile0 + m < end) {
#pragma unroll
                for (int n = 0; n < NT; ++n) {
                    if ((u32)n * 8 < batch) {
                        tile_epilogue<EX>(acc[m][n], scratch, tile0 + m, n, rows, out, v_rows, batch, samples,
                                          vocab_offset, ex, norms);
                    }
                }
            }
        }
    }
    if constexpr (EX) {
        if (ex.norms) {
            __syncthreads();
            for (u32 b = threadIdx.x; b < min(batch, (u32)Shared::ROWS); b += blockDim.x) {
                float2 merged = all_norms[b];
                for (int wi = 1; wi < MMA_WARPS; ++wi) merged = lse_merge(merged, all_norms[wi * Shared::ROWS + b]);
                ex.norms[(size_t)b * ex.norm_slots + blockIdx.x] = merged;
            }
        }
    }
}

// MT: tiles per warp per step. Two for 16 n-tiles, so that each H fragment read from shared memory
// feeds two tiles (shared-memory bandwidth, not registers, limits the widest variant).
#define FUSED_MMA_NT(E, NT, MT)                                                                      \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32) fused_mma_##E##_n##NT(               \
        const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, u32 batch,   \
        u32 samples, u32 vocab_offset) {                                                             \
        fused_mma<E, NT, MT, false>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, Extras{}); \
    }                                                                                                \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32) fused_mma_##E##_n##NT##_ex(          \
        const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, u32 batch,   \
        u32 samples, u32 vocab_offset, Extras ex) {                                                  \
        fused_mma<E, NT, MT, true>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, ex);   \
    }
#define FUSED_MMA(E)                                                                                 \
    FUSED_MMA_NT(E, 1, 1) FUSED_MMA_NT(E, 2, 1) FUSED_MMA_NT(E, 4, 1) FUSED_MMA_NT(E, 8, MMA_MT8)          \
    FUSED_MMA_NT(E, 16, MMA_MT16)

FUSED_MMA(Bf16)
FUSED_MMA(F16)

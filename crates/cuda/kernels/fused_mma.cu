// ---- fused LM head + sampling on tensor cores (mma.sync; wgmma on sm_90a): bf16 and f16 ----------
//
// W and H of one 16-bit type. The logits of 16-token tiles of W against n-tiles of 8 hidden rows
// (NT n-tiles: up to 8·NT rows per launch).
//
// - Persistent grid: block i owns the contiguous 16-token tiles [tiles·i/grid, tiles·(i+1)/grid), so
//   every SM streams the same share of W, to within one tile.
// - A block step gives each of its MMA_WARPS warps MT tiles; K is walked in MMA_KC chunks.
// - One cp.async pipeline, MMA_STAGES deep, feeds both operands through shared memory: each stage
//   holds one chunk of H (all rows, read by every warp) and one chunk of every warp's W tiles. The
//   pipeline runs on across the block's steps, so the next tiles' W is in flight during a step's
//   last chunks and its epilogue.
// - The mma's A operand is H (16 rows per m-tile: 8·NT rows, at least 16) and its B operand is W
//   (8 tokens per n-group, two per tile). Both sit in shared memory as rows of MMA_KC elements whose
//   16-byte pieces are XOR-swizzled by the row's low 3 bits, so that ldmatrix reads every fragment
//   in one conflict-free instruction and the registers need no shuffling before the mma.
// - On sm_90a the variants from MMA_WGMMA_MIN_NT n-tiles multiply with wgmma instead (wgmma.cuh):
//   each warpgroup's four warps' W tiles are one m64 operand and H the n(8·NT) operand, both read
//   by the tensor cores from the same swizzled stages; one instruction per k16 step.
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
// K elements per chunk, fixed: rows of 128 bytes, eight 16-byte pieces (the swizzle, and wgmma's
// 128-byte-swizzled operands).
#define MMA_KC 64
#ifndef MMA_STAGES
#define MMA_STAGES 4
#endif
// W is read once: L2 fetches 256 bytes per miss, so the next chunk of a row arrives with this one.
#ifndef MMA_W_COPY
#define MMA_W_COPY "cp.async.cg.shared.global.L2::256B"
#endif
// The narrowest variant (n-tiles of 8 hidden rows) on wgmma where it exists.
#ifndef MMA_WGMMA_MIN_NT
#define MMA_WGMMA_MIN_NT 4
#endif
// Tiles per warp per step of the 8- and 16-n-tile variants on mma.sync.
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

// 16 bytes global → shared, zero-filled when `bytes` is 0; W's copies carry MMA_W_COPY's L2 hint.
template <bool W>
__device__ __forceinline__ void cp_async16(void* dst, const void* src, u32 bytes) {
    const u32 d = (u32)__cvta_generic_to_shared(dst);
    if constexpr (W) {
        asm volatile(MMA_W_COPY " [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(bytes));
    } else {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(bytes));
    }
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// The block's shared state for one launch shape.
template <int NT, int MT, bool EX>
struct MmaShared {
    static constexpr int ROWS = 8 * NT;
    // Rows of H in shared memory: whole m-tiles of 16, zero past the batch.
    static constexpr int H_ROWS = ROWS < 16 ? 16 : ROWS;
    // A stage: H_ROWS rows of H, then each warp's MT · 16 rows of W; MMA_KC elements per row.
    static constexpr int H_STAGE = H_ROWS * MMA_KC;
    static constexpr int W_WARP = MT * 16 * MMA_KC;
    static constexpr int STAGE_ELEMS = H_STAGE + MMA_WARPS * W_WARP;
    static constexpr int SCRATCH_FLOATS = MMA_WARPS * 8 * MMA_SCRATCH_STRIDE;
    // EX: each warp's log-normaliser partials, [warp][row].
    static constexpr int NORMS = EX ? MMA_WARPS * ROWS : 0;
    // + slack to start the stages on a 1024-byte boundary (wgmma's swizzle atoms).
    static constexpr int BYTES = MMA_STAGES * STAGE_ELEMS * 2 + SCRATCH_FLOATS * 4 + NORMS * 8 + 1024;
};

// Whether the NT-n-tile variant multiplies with wgmma, and its tiles per warp per step: one on
// wgmma (a warpgroup's m64 operand is its four warps' tiles).
template <int NT>
__device__ constexpr bool wgmma_variant() {
    return WGMMA_AVAILABLE && NT >= MMA_WGMMA_MIN_NT;
}
template <int NT>
__device__ constexpr int tiles_per_warp() {
    return wgmma_variant<NT>() ? 1 : NT == 16 ? MMA_MT16 : NT == 8 ? MMA_MT8 : 1;
}

// Element offset of 16-byte piece `q` of row `r` in a stage's rows: pieces are XOR-swizzled by the
// row's low bits, so the 8 rows an ldmatrix reads at one piece lie in 8 different bank groups.
__device__ __forceinline__ u32 swizzled(u32 r, u32 q) { return r * MMA_KC + ((q ^ (r & 7)) * 8); }

// Copies pieces of chunk `c` of `rows` rows of `src` (row stride `dim`) into `stage`, `threads`
// threads from `thread`; row r is live when `live(r)`, and zero-filled otherwise or past `dim`.
template <bool W, int ROWS_, int THREADS, typename Live>
__device__ __forceinline__ void stage_rows(u16* stage, const u16* __restrict__ src, u32 first_row, u32 c, u32 dim,
                                           int thread, Live live) {
    constexpr int PIECES = MMA_KC / 8;
#pragma unroll
    for (int i0 = 0; i0 < ROWS_ * PIECES; i0 += THREADS) {
        const int i = i0 + thread;
        if (ROWS_ * PIECES % THREADS != 0 && i >= ROWS_ * PIECES) break;
        const u32 r = i / PIECES, q = i % PIECES, k = c * MMA_KC + 8 * q;
        const bool ok = live(r) && k < dim;
        cp_async16<W>(stage + swizzled(r, q), ok ? src + (size_t)(first_row + r) * dim + k : src, ok ? 16 : 0);
    }
}

// Four 8×8 matrices of 16-bit elements from shared memory, one row address per lane.
__device__ __forceinline__ void ldmatrix_x4(u32 (&x)[4], const u16* p) {
    const u32 a = (u32)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(x[0]), "=r"(x[1]), "=r"(x[2]), "=r"(x[3])
                 : "r"(a));
}

// acc[i][m][q] += one chunk's products for m-tile i of H, tile m of W and its n-group q (tokens
// 8q … 8q+7): MMA_KC / 16 steps of m16n8k16. `h_stage` and `warp_stage` are the chunk's H and this
// warp's W in shared memory.
template <typename E, int M16, int MT>
__device__ __forceinline__ void mma_chunk(float (&acc)[M16][MT][2][4], const u16* h_stage, const u16* warp_stage) {
    const u32 lane = threadIdx.x & 31;
    // A (H, 16 rows × 16): lanes 0-15 give rows 0-15 at the step's first piece, 16-31 at its second.
    const u32 a_row = lane & 15, a_half = lane >> 4;
    // B (W, 16 tokens × 16): lanes 0-7 tokens 0-7 first piece, 8-15 second piece, 16-31 tokens 8-15.
    const u32 b_row = (lane & 7) + ((lane >> 4) << 3), b_half = (lane >> 3) & 1;
#pragma unroll
    for (int kk = 0; kk < MMA_KC / 16; ++kk) {
        u32 b[MT][4];
#pragma unroll
        for (int m = 0; m < MT; ++m) ldmatrix_x4(b[m], warp_stage + swizzled(16 * m + b_row, 2 * kk + b_half));
#pragma unroll
        for (int i = 0; i < M16; ++i) {
            u32 a[4];
            ldmatrix_x4(a, h_stage + swizzled(16 * i + a_row, 2 * kk + a_half));
#pragma unroll
            for (int m = 0; m < MT; ++m) {
                mma16816<E>(acc[i][m][0], a[0], a[1], a[2], a[3], b[m][0], b[m][1]);
                mma16816<E>(acc[i][m][1], a[0], a[1], a[2], a[3], b[m][2], b[m][3]);
            }
        }
    }
}

// The accumulators of a warp's MT tiles on mma.sync: acc[i][m][q] is m-tile i of H (16 rows) ×
// n-group q (8 tokens) of tile m.
template <typename E, int NT, int MT>
struct SyncTiles {
    static constexpr int M16 = (8 * NT < 16 ? 16 : 8 * NT) / 16;
    float acc[M16][MT][2][4];

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int i = 0; i < M16; ++i)
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int q = 0; q < 8; ++q) acc[i][m][q / 4][q % 4] = 0.0f;
    }

    // `w_stages`: the stage's W, this warp's MT tiles at warp · `w_warp`.
    __device__ __forceinline__ void chunk(const u16* h_stage, const u16* w_stages, int w_warp) {
        mma_chunk<E, M16, MT>(acc, h_stage, w_stages + (threadIdx.x >> 5) * w_warp);
    }

    // Tile m's logits of n-tile n (8 rows × 16 tokens) into the warp's scratch, [row][token]: this
    // thread holds row g of half n % 2 of m-tile n / 2, tokens 8q + 2t and 8q + 2t + 1.
    __device__ __forceinline__ void to_scratch(int m, int n, float* scratch) const {
        const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, half = 2 * (n & 1);
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            *reinterpret_cast<float2*>(scratch + g * MMA_SCRATCH_STRIDE + 8 * q + 2 * t) =
                make_float2(acc[n / 2][m][q][half], acc[n / 2][m][q][half + 1]);
        }
    }
};

// The accumulators of a warp's tile on wgmma: acc[n] is n-tile n (8 rows) × the warp's 16 tokens
// of its warpgroup's m64 result.
template <typename E, int NT>
struct WgmmaTiles {
    float acc[NT][4];

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[n][q] = 0.0f;
    }

    // `w_stages`: the stage's W; this warpgroup's 64 rows start at its first warp's tile.
    __device__ __forceinline__ void chunk(const u16* h_stage, const u16* w_stages, int w_warp) {
        const u32 a = (u32)__cvta_generic_to_shared(w_stages + ((threadIdx.x >> 5) & ~3) * w_warp);
        const u32 b = (u32)__cvta_generic_to_shared(h_stage);
        wgmma_fence(acc);
#pragma unroll
        for (int kk = 0; kk < MMA_KC / 16; ++kk) {
            Wgmma<NT>::template run<E>(acc, swizzled_operand(a + 32 * kk), swizzled_operand(b + 32 * kk));
        }
        wgmma_wait(acc);
    }

    // The tile's logits of n-tile n into the warp's scratch, [row][token]: this thread holds tokens
    // g and g + 8, rows 2t and 2t + 1.
    __device__ __forceinline__ void to_scratch(int, int n, float* scratch) const {
        const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
        scratch[(2 * t) * MMA_SCRATCH_STRIDE + g] = acc[n][0];
        scratch[(2 * t + 1) * MMA_SCRATCH_STRIDE + g] = acc[n][1];
        scratch[(2 * t) * MMA_SCRATCH_STRIDE + g + 8] = acc[n][2];
        scratch[(2 * t + 1) * MMA_SCRATCH_STRIDE + g + 8] = acc[n][3];
    }
};

template <bool C, typename A, typename B>
struct Pick {
    typedef A type;
};
template <typename A, typename B>
struct Pick<false, A, B> {
    typedef B type;
};

// Folds one tile's logits (16 tokens × the 8 rows of n-tile `n`) into out[]: the tile's best
// candidate per (row, sample).
template <bool EX, typename Tiles>
__device__ __forceinline__ void tile_epilogue(const Tiles& tiles, int m, float* scratch, u32 tile, u32 n,
                                              const RowParams* __restrict__ rows, u64* __restrict__ out, u32 v_rows,
                                              u32 batch, u32 samples, u32 vocab_offset, const Extras& ex,
                                              float2* norms) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    __syncwarp();
    tiles.to_scratch(m, (int)n, scratch);
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

// Where the block's pipeline stands: the (step, chunk) a stage holds or is next to hold.
struct ChunkCursor {
    u32 tile0;  // this warp's first tile of the step
    u32 c;      // K chunk
    u32 slot;   // pipeline stage
    __device__ __forceinline__ void advance(u32 chunks, u32 step_tiles) {
        if (++c == chunks) {
            c = 0;
            tile0 += step_tiles;
        }
        if (++slot == MMA_STAGES) slot = 0;
    }
};

template <typename E, int NT, bool EX>
__device__ void fused_mma(const u16* __restrict__ w, const u16* __restrict__ h, const RowParams* __restrict__ rows,
                          u64* __restrict__ out, u32 v_rows, u32 dim, u32 batch, u32 samples, u32 vocab_offset,
                          const Extras& ex) {
    constexpr int MT = tiles_per_warp<NT>();
    typedef MmaShared<NT, MT, EX> Shared;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024 - ((u32)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
    u16* stages = reinterpret_cast<u16*>(smem);
    const int warp = threadIdx.x >> 5;
    unsigned char* after_stages = smem + MMA_STAGES * Shared::STAGE_ELEMS * 2;
    float* scratch = reinterpret_cast<float*>(after_stages) + warp * 8 * MMA_SCRATCH_STRIDE;
    float2* all_norms = reinterpret_cast<float2*>(after_stages + Shared::SCRATCH_FLOATS * 4);
    float2* norms = all_norms + warp * Shared::ROWS;
    if constexpr (EX) {
        for (int i = threadIdx.x & 31; i < Shared::ROWS; i += 32) norms[i] = make_float2(NEG_INF, 0.0f);
    }

    const u32 tiles = (v_rows + 15) / 16;
    const u32 first = (u32)((u64)tiles * blockIdx.x / gridDim.x);
    const u32 end = (u32)((u64)tiles * (blockIdx.x + 1) / gridDim.x);
    const u32 chunks = (dim + MMA_KC - 1) / MMA_KC;
    constexpr u32 STEP_TILES = MMA_WARPS * MT;
    const u32 total = (end - first + STEP_TILES - 1) / STEP_TILES * chunks;

    // Stages (step, chunk) pairs in order, one commit group each (empty past the end).
    ChunkCursor load{first + warp * MT, 0, 0};
    u32 issued = 0;
    auto issue = [&]() {
        if (issued < total) {
            u16* stage = stages + load.slot * Shared::STAGE_ELEMS;
            stage_rows<false, Shared::H_ROWS, MMA_WARPS * 32>(stage, h, 0, load.c, dim, threadIdx.x,
                                                                [&](u32 r) { return r < batch; });
            const u32 tok0 = load.tile0 * 16, tiles_left = end - min(end, load.tile0);
            stage_rows<true, MT * 16, 32>(stage + Shared::H_STAGE + warp * Shared::W_WARP, w, tok0, load.c, dim,
                                          threadIdx.x & 31,
                                          [&](u32 r) { return r / 16 < tiles_left && tok0 + r < v_rows; });
            load.advance(chunks, STEP_TILES);
        }
        ++issued;
        cp_async_commit();
    };
#pragma unroll
    for (int s = 0; s < MMA_STAGES - 1; ++s) issue();

    typename Pick<wgmma_variant<NT>(), WgmmaTiles<E, NT>, SyncTiles<E, NT, MT>>::type acc;
    ChunkCursor use{first + warp * MT, 0, 0};
    acc.zero();
    for (u32 i = 0; i < total; ++i) {
        cp_async_wait<MMA_STAGES - 2>();
        // wgmma reads shared memory through the async proxy: make this thread's copies visible to it.
        if constexpr (wgmma_variant<NT>()) asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        // Every warp is done with the previous stage, which the next line refills.
        __syncthreads();
        issue();
        const u16* stage = stages + use.slot * Shared::STAGE_ELEMS;
        acc.chunk(stage, stage + Shared::H_STAGE, Shared::W_WARP);
        if (use.c + 1 == chunks) {
#pragma unroll
            for (int m = 0; m < MT; ++m) {
                if (use.tile0 + m < end) {
#pragma unroll
                    for (int n = 0; n < NT; ++n) {
                        if ((u32)n * 8 < batch) {
                            tile_epilogue<EX>(acc, m, scratch, use.tile0 + m, n, rows, out, v_rows, batch,
                                              samples, vocab_offset, ex, norms);
                        }
                    }
                }
            }
            // Zeroed here, once per step: a test in every chunk would cost a select per element.
            acc.zero();
        }
        use.advance(chunks, STEP_TILES);
    }
    cp_async_wait<0>();
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

#define FUSED_MMA_NT(E, NT)                                                                          \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32) fused_mma_##E##_n##NT(               \
        const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, u32 batch,   \
        u32 samples, u32 vocab_offset) {                                                             \
        fused_mma<E, NT, false>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, Extras{});  \
    }                                                                                                \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32) fused_mma_##E##_n##NT##_ex(          \
        const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, u32 batch,   \
        u32 samples, u32 vocab_offset, Extras ex) {                                                  \
        fused_mma<E, NT, true>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, ex);        \
    }
#define FUSED_MMA(E)                                                                                 \
    FUSED_MMA_NT(E, 1) FUSED_MMA_NT(E, 2) FUSED_MMA_NT(E, 4) FUSED_MMA_NT(E, 8) FUSED_MMA_NT(E, 16) FUSED_MMA_NT(E, 32)

FUSED_MMA(Bf16)
FUSED_MMA(F16)

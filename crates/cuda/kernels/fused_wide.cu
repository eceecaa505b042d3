// ---- fused LM head + sampling for large batches on Hopper (sm_90a): up to 256 rows per pass ------
//
// fused_mma.cu's stages and wgmma (a step of one 16-token tile per multiplying warp, K in chunks
// of 64) over 8·NT rows at once, but no epilogue warps and no step buffer: at 256 rows a step's
// logits would take 128 KB of shared memory and leave no room for the stages, so fused_mma.cu
// takes at most 128 rows per pass and reads W twice for 256.
//
// - The stages are filled by TMA (fused_mma.cu's TmaRing), W and H both through tensor maps.
// - The multiplying warps score each step themselves once its products are in their registers,
//   32 rows at a time: a warp writes its tile's 16 tokens × 32 rows of logits to its own 2.5 KB of
//   shared memory, and each lane scores one row's 16 tokens (best_of_groups: the same rule and the
//   same rejections before any logarithm as the epilogue warps) and folds its best into out[] with
//   one atomicMax when it may beat what out[] held. The tensor cores wait while a step is scored;
//   the copies already in flight do not.
//
// Plain launches only: the `_ex` kernels' constraints, log-normaliser partials and lists stay with
// fused_mma.cu's epilogue warps.

#if WGMMA_AVAILABLE

// Rows scored at a time: a lane each.
#define WIDE_PIECE_ROWS 32
// Floats per row of a warp's scratch: 16 tokens and 4 of padding, so that the warp's stores
// (rows 2t, 2t + 1 at token g) and its 16-byte loads (a row per lane) fall in distinct banks.
#define WIDE_SCRATCH_STRIDE 20

template <int NT>
struct WideShared : StageShape<NT> {
    static constexpr int SCRATCH = MMA_WARPS * WIDE_PIECE_ROWS * WIDE_SCRATCH_STRIDE * 4;
    // The rows' parameters, read once.
    static constexpr int ROW_TABLE = 8 * NT * (int)sizeof(Row);
    static constexpr int REST = SCRATCH + ROW_TABLE + 64 + 1024;
    // One block per SM: Hopper's 228 KB less the 1 KB the hardware keeps.
    static constexpr int STAGES = StageShape<NT>::fitting(227 * 1024, REST, MMA_STAGES_IN_FLIGHT);
};

template <typename E, int NT>
__device__ void fused_wide(const TensorMap& w_map, const TensorMap& h_map, const RowParams* __restrict__ rows,
                           u64* __restrict__ out, u32 v_rows, u32 dim, u32 batch, u32 samples, u32 vocab_offset) {
    typedef WgmmaTiles<E, NT> Tiles;
    typedef WideShared<NT> Shared;
    static_assert(NT % 4 == 0, "whole pieces of 32 rows");
    static_assert(Shared::STAGES >= 3, "the pipeline needs a stage beside the two a chunk in flight holds");
    constexpr int PIECES = NT / 4;
    unsigned char* smem = aligned_shared();
    u16* stages = reinterpret_cast<u16*>(smem);
    const u32 warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float* scratch = reinterpret_cast<float*>(smem + Shared::STAGES * Shared::STAGE_ELEMS * 2) +
                     warp * WIDE_PIECE_ROWS * WIDE_SCRATCH_STRIDE;
    Row* table = reinterpret_cast<Row*>(smem + Shared::STAGES * Shared::STAGE_ELEMS * 2 + Shared::SCRATCH);
    for (u32 r = threadIdx.x; r < batch && r < Shared::ROWS; r += MMA_WARPS * 32) table[r] = row_of(rows[r]);
    __syncthreads();

    const BlockTiles bt(v_rows);
    TmaRing<Shared, Tiles> ring(
        RingArgs{stages, nullptr, nullptr, v_rows, dim, batch, bt, reinterpret_cast<u64*>(table + Shared::ROWS), 1,
                 &w_map, &h_map});
    Tiles acc;
    acc.zero();
    for (u32 k = 0; k < bt.steps; ++k) {
        ring.multiply_step(acc);
        // What out[] holds for sample 0 of this lane's row of each piece, read while the last
        // chunk's products finish.
        float beat[PIECES];
#pragma unroll
        for (int p = 0; p < PIECES; ++p) {
            const u32 row = WIDE_PIECE_ROWS * p + lane;
            beat[p] = row < batch ? unpack_score(*reinterpret_cast<const volatile u64*>(&out[(size_t)row * samples]))
                                  : NEG_INF;
        }
        acc.drain();
        const u32 tile = bt.tile_of(k, warp), live = bt.live_tokens(tile, v_rows);
        const u32 first = vocab_offset + 16 * tile;
#pragma unroll
        for (int p = 0; p < PIECES; ++p) {
            if (WIDE_PIECE_ROWS * p >= batch) break;
            // The lanes are done with the previous piece.
            __syncwarp();
            acc.template rows_to<4>(scratch, WIDE_SCRATCH_STRIDE, 4 * p, lane >> 2);
            __syncwarp();
            const u32 row = WIDE_PIECE_ROWS * p + lane;
            if (row >= batch) continue;
            const float* l = scratch + lane * WIDE_SCRATCH_STRIDE;
            for (u32 s = 0; s < samples; ++s) {
                u64* o = &out[(size_t)row * samples + s];
                const float to_beat = s == 0 ? beat[p] : unpack_score(*reinterpret_cast<const volatile u64*>(o));
                const u64 best = best_of_groups(l, 0, 4, live, first, table[row], s, to_beat);
                if (may_beat(best, to_beat)) atomicMax(o, best);
            }
        }
        acc.zero();
    }
}

// `w` and `h`: the parameters every fused entry point takes; the copies read them through the maps.
#define FUSED_WIDE_NT(E, NT)                                                                                      \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32, 1)                                              \
        fused_wide_##E##_n##NT(const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, \
                               u32 batch, u32 samples, u32 vocab_offset, const __grid_constant__ TensorMap w_map, \
                               const __grid_constant__ TensorMap h_map) {                                      \
        fused_wide<E, NT>(w_map, h_map, rows, out, v_rows, dim, batch, samples, vocab_offset);                  \
    }

FUSED_WIDE_NT(Bf16, 32) FUSED_WIDE_NT(F16, 32)

#endif

// ---- fused LM head + sampling on tensor cores (mma.sync; wgmma on sm_90a): bf16 and f16 ----------
//
// W and H of one 16-bit type. The logits of 16-token tiles of W against n-tiles of 8 hidden rows
// (NT n-tiles: up to 8·NT rows per launch, at most 128; more take several launches).
//
// - Persistent grid: block i owns the contiguous 16-token tiles [tiles·i/grid, tiles·(i+1)/grid), so
//   every SM streams the same share of W, to within one tile.
// - Two kinds of warps. MMA_WARPS multiplying warps: a block step gives each one tile, and K is
//   walked in MMA_KC chunks. MMA_EPI_WARPS epilogue warps: they score a step's logits while the
//   multiplying warps go on with the next step, so sampling overlaps the stream of W.
// - One pipeline, `STAGES` deep, feeds both operands through shared memory: each stage holds one
//   chunk of H (all rows, read by every warp) and one chunk of every warp's W tile. The pipeline
//   runs on across the block's steps. Its copies are cp.async (ChunkRing), or on the 16-n-tile
//   wgmma variant TMA copies from tensor maps (TmaRing, tma.cuh).
// - The mma's A operand is H (16 rows per m-tile: 8·NT rows, at least 16) and its B operand is W
//   (8 tokens per n-group, two per tile). Both sit in shared memory as rows of MMA_KC elements whose
//   16-byte pieces are XOR-swizzled by the row's low 3 bits, so that ldmatrix reads every fragment
//   in one conflict-free instruction and the registers need no shuffling before the mma.
// - On sm_90a the variants from MMA_WGMMA_MIN_NT n-tiles multiply with wgmma instead (wgmma.cuh):
//   each warpgroup's four warps' W tiles are one m64 operand and H the n(8·NT) operand, both read
//   by the tensor cores from the same swizzled stages; one instruction per k16 step.
// - Hand-over: at the end of a step the multiplying warps write their accumulators into the step
//   buffer ([row][token] floats) once the epilogue warps are done with its previous contents, and
//   go on with the next step while the epilogue warps score this one. Each kind of warp runs its
//   own loop over the steps (neither holds the other's registers); they meet on two mbarriers,
//   FULL and EMPTY, where one side arrives and the other waits for the phase. (Named barriers
//   worked too, but compute-sanitizer racecheck does not follow them; it follows mbarriers.)
// - Scoring: an epilogue warp takes whole rows of the step; a lane scores four consecutive tokens
//   of one (row, sample), read in one load, with one Philox evaluation. Groups that cannot beat
//   what out[] already holds are rejected on their largest logit and smallest uniform, before any
//   logarithm (best_of_four; the Philox too when no noise could lift them); when a lane has a
//   candidate that may beat it, the warp reduces to the step's best and folds it into out[] with
//   one atomicMax (out must be zeroed first). After the first steps no lane has one, and the step
//   costs no reduction.
// - EX (the `_ex` entry points): the logits are constrained before sampling, the scaled logits of
//   ranking rows are written out (or, with lists, their keys kept in the block's per-tile list:
//   tile_lists.cuh), and each row keeps MMA_NORM_LANES log-normaliser partials in shared memory
//   (a row belongs to one epilogue warp; a lane's tokens of every step fold into one partial, so
//   no step needs a reduction). At the end they are merged in a fixed order and written to slot
//   blockIdx.x, with the lists' heads.

// Tunable at compile time (tools/tune_mma.py); src/kernels.rs mirrors the defaults.
#ifndef MMA_WARPS
#define MMA_WARPS 8
#endif
#ifndef MMA_EPI_WARPS
#define MMA_EPI_WARPS 8
#endif
#define MMA_THREADS ((MMA_WARPS + MMA_EPI_WARPS) * 32)
// K elements per chunk, fixed: rows of 128 bytes, eight 16-byte pieces (the swizzle, and wgmma's
// 128-byte-swizzled operands).
#define MMA_KC 64
#ifndef MMA_STAGES
#define MMA_STAGES 4
#endif
// With a chunk's products in flight one stage more is busy: the wgmma variants may take this many.
#ifndef MMA_STAGES_IN_FLIGHT
#define MMA_STAGES_IN_FLIGHT 6
#endif
// Blocks per SM the register allocation and shared memory must allow: two up to 4 n-tiles, one
// from 8 (left to itself, ptxas caps some of those at 64 registers and spills).
#define MMA_MIN_BLOCKS(NT) ((NT) <= 4 ? 2 : 1)
// W is read once: L2 fetches 256 bytes per miss, so the next chunk of a row arrives with this one.
#ifndef MMA_W_COPY
#define MMA_W_COPY "cp.async.cg.shared.global.L2::256B"
#endif
// K chunks whose wgmma may still run while the next chunk's are issued (0 or 1).
#ifndef MMA_WGMMA_IN_FLIGHT
#define MMA_WGMMA_IN_FLIGHT 1
#endif
// The narrowest variant (n-tiles of 8 hidden rows) on wgmma where it exists.
#ifndef MMA_WGMMA_MIN_NT
#define MMA_WGMMA_MIN_NT 4
#endif
// Tokens of a block step: one 16-token tile per multiplying warp.
#define MMA_STEP_TOKENS (MMA_WARPS * 16)
// Log-normaliser partials per row (EX): lanes l and l + 16 share one, so that the widest variant
// keeps its four stages.
#define MMA_NORM_LANES 16

// The multiplying warps' barrier, before a stage of the ring is refilled (named barrier 1; 0 is
// __syncthreads').
__device__ __forceinline__ void ring_sync() { asm volatile("bar.sync 1, %0;" ::"n"(MMA_WARPS * 32) : "memory"); }

// The step buffer between the two kinds of warps, which run their own loops: two mbarriers in
// shared memory, one side arriving (release), the other waiting for the phase (acquire). FULL:
// every multiplying thread has written step k (phase k); EMPTY: every epilogue thread is done
// with step k − 1 (phase k).
__device__ __forceinline__ void mbar_init(u64* bar, u32 arrivals) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"((u32)__cvta_generic_to_shared(bar)), "r"(arrivals)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(u64* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"((u32)__cvta_generic_to_shared(bar)) : "memory");
}
// Waits until phase `phase` of `bar` (counted from 0) has completed: try_wait (which may suspend
// the thread) from sm_90, test_wait before.
#if __CUDA_ARCH__ >= 900
#define MBAR_TEST "mbarrier.try_wait.parity.shared::cta.b64"
#else
#define MBAR_TEST "mbarrier.test_wait.parity.shared::cta.b64"
#endif
__device__ __forceinline__ void mbar_wait(u64* bar, u32 phase) {
    asm volatile(
        "{\n.reg .pred done;\nwaiting:\n" MBAR_TEST " done, [%0], %1;\n"
        "@!done bra waiting;\n}" ::"r"((u32)__cvta_generic_to_shared(bar)),
        "r"(phase & 1)
        : "memory");
}

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

// Whether the NT-n-tile variant multiplies with wgmma.
template <int NT>
__device__ constexpr bool wgmma_variant() {
    return WGMMA_AVAILABLE && NT >= MMA_WGMMA_MIN_NT;
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

// acc[i][q] += one chunk's products for m-tile i of H and n-group q of the warp's W tile (tokens
// 8q … 8q+7): MMA_KC / 16 steps of m16n8k16. `h_stage` and `warp_stage` are the chunk's H and this
// warp's W in shared memory.
template <typename E, int M16>
__device__ __forceinline__ void mma_chunk(float (&acc)[M16][2][4], const u16* h_stage, const u16* warp_stage) {
    const u32 lane = threadIdx.x & 31;
    // A (H, 16 rows × 16): lanes 0-15 give rows 0-15 at the step's first piece, 16-31 at its second.
    const u32 a_row = lane & 15, a_half = lane >> 4;
    // B (W, 16 tokens × 16): lanes 0-7 tokens 0-7 first piece, 8-15 second piece, 16-31 tokens 8-15.
    const u32 b_row = (lane & 7) + ((lane >> 4) << 3), b_half = (lane >> 3) & 1;
#pragma unroll
    for (int kk = 0; kk < MMA_KC / 16; ++kk) {
        u32 b[4];
        ldmatrix_x4(b, warp_stage + swizzled(b_row, 2 * kk + b_half));
#pragma unroll
        for (int i = 0; i < M16; ++i) {
            u32 a[4];
            ldmatrix_x4(a, h_stage + swizzled(16 * i + a_row, 2 * kk + a_half));
            mma16816<E>(acc[i][0], a[0], a[1], a[2], a[3], b[0], b[1]);
            mma16816<E>(acc[i][1], a[0], a[1], a[2], a[3], b[2], b[3]);
        }
    }
}

// The accumulators of a warp's tile on mma.sync: acc[i][q] is m-tile i of H (16 rows) × n-group q
// (8 tokens) of the tile.
template <typename E, int NT>
struct SyncTiles {
    static constexpr int M16 = (8 * NT < 16 ? 16 : 8 * NT) / 16;
    // Stores of a float2 per lane at row g, token 2t: a row stride of 8 (mod 32) words puts each
    // half-warp's 16 stores in distinct banks.
    static constexpr int BUF_PAD = 8;
    static constexpr bool WGMMA = false;
    static constexpr int IN_FLIGHT = 0;
    float acc[M16][2][4];

    __device__ __forceinline__ void drain() {}

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int i = 0; i < M16; ++i)
#pragma unroll
            for (int q = 0; q < 8; ++q) acc[i][q / 4][q % 4] = 0.0f;
    }

    // `w_stages`: the stage's W, warp w's tile at w · `w_tile`.
    __device__ __forceinline__ void chunk(const u16* h_stage, const u16* w_stages, int w_tile) {
        mma_chunk<E, M16>(acc, h_stage, w_stages + (threadIdx.x >> 5) * w_tile);
    }

    // The tile's logits of the 8·NT rows into `buf` ([row][token of the step], row stride `stride`):
    // this thread holds rows 16i + g and 16i + g + 8, tokens 8q + 2t and 8q + 2t + 1 of the warp's
    // tile.
    __device__ __forceinline__ void to_buffer(float* buf, int stride) const {
        const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, tok = 16 * (threadIdx.x >> 5) + 2 * t;
#pragma unroll
        for (int i = 0; i < M16; ++i)
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int r8 = 16 * i + 8 * half;
                if (r8 >= 8 * NT) continue;
#pragma unroll
                for (int q = 0; q < 2; ++q) {
                    *reinterpret_cast<float2*>(buf + (r8 + g) * stride + tok + 8 * q) =
                        make_float2(acc[i][q][2 * half], acc[i][q][2 * half + 1]);
                }
            }
    }
};

// The accumulators of a warp's tile on wgmma: acc[n] is n-tile n (8 rows) × the warp's 16 tokens
// of its warpgroup's m64 result.
template <typename E, int NT>
struct WgmmaTiles {
    // Stores of one float per lane at rows 2t, 2t + 1 and token g: a row stride of 4 (mod 32)
    // words puts a warp's 32 stores in distinct banks.
    static constexpr int BUF_PAD = 4;
    static constexpr bool WGMMA = true;
    static constexpr int IN_FLIGHT = MMA_WGMMA_IN_FLIGHT;
    float acc[NT][4];

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[n][q] = 0.0f;
    }

    // `w_stages`: the stage's W; this warpgroup's 64 rows start at its first warp's tile.
    __device__ __forceinline__ void chunk(const u16* h_stage, const u16* w_stages, int w_tile) {
        const u32 a = (u32)__cvta_generic_to_shared(w_stages + ((threadIdx.x >> 5) & ~3) * w_tile);
        const u32 b = (u32)__cvta_generic_to_shared(h_stage);
        wgmma_hold(acc);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < MMA_KC / 16; ++kk) {
            Wgmma<NT>::template run<E>(acc, swizzled_operand(a + 32 * kk), swizzled_operand(b + 32 * kk));
        }
        wgmma_commit();
        wgmma_wait<IN_FLIGHT>();
        wgmma_hold(acc);
    }

    // Every chunk's products are in acc.
    __device__ __forceinline__ void drain() {
        wgmma_wait<0>();
        wgmma_hold(acc);
    }

    // The logits of n-tiles n0 … n0 + COUNT − 1 into `buf` ([row][token], row stride `stride`) from
    // its row 0, this thread's tokens g and g + 8 of the warp's tile at `tok` and `tok` + 8: it
    // holds rows 8n + 2t and 8n + 2t + 1 of them.
    template <int COUNT>
    __device__ __forceinline__ void rows_to(float* buf, int stride, int n0, int tok) const {
        const int t = threadIdx.x & 3;
#pragma unroll
        for (int n = 0; n < COUNT; ++n) {
            float* r = buf + (8 * n + 2 * t) * stride + tok;
            r[0] = acc[n0 + n][0];
            r[stride] = acc[n0 + n][1];
            r[8] = acc[n0 + n][2];
            r[stride + 8] = acc[n0 + n][3];
        }
    }

    // The tile's logits into `buf` (as SyncTiles').
    __device__ __forceinline__ void to_buffer(float* buf, int stride) const {
        rows_to<NT>(buf, stride, 0, 16 * (threadIdx.x >> 5) + ((threadIdx.x & 31) >> 2));
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

// The pipeline's stages for a launch of 8·NT rows.
template <int NT>
struct StageShape {
    static constexpr int ROWS = 8 * NT;
    // Rows of H in shared memory: whole m-tiles of 16, zero past the batch.
    static constexpr int H_ROWS = ROWS < 16 ? 16 : ROWS;
    // A stage: H_ROWS rows of H, then each multiplying warp's 16 rows of W; MMA_KC elements per row.
    static constexpr int H_STAGE = H_ROWS * MMA_KC;
    static constexpr int W_TILE = 16 * MMA_KC;
    static constexpr int STAGE_ELEMS = H_STAGE + MMA_WARPS * W_TILE;
    // The stages that fit in `budget` bytes beside `rest` bytes of other state, at most `most`.
    __host__ __device__ static constexpr int fitting(int budget, int rest, int most) {
        return (budget - rest) / (STAGE_ELEMS * 2) < most ? (budget - rest) / (STAGE_ELEMS * 2) : most;
    }
};

// A kernel's dynamic shared memory, its start raised to 1024 bytes (wgmma's swizzle atoms); the
// launch asks for 1024 bytes of slack.
__device__ __forceinline__ unsigned char* aligned_shared() {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    return smem_raw + ((1024 - ((u32)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
}

// The block's shared state for one launch shape; `PAD`: the step buffer's row padding,
// `IN_FLIGHT`: the K chunks whose products may still be running.
template <int NT, bool EX, int PAD, int IN_FLIGHT>
struct MmaShared : StageShape<NT> {
    // The step buffer: the step's logits, [row][token].
    static constexpr int BUF_STRIDE = MMA_STEP_TOKENS + PAD;
    // EX: each row's log-normaliser partials.
    static constexpr int NORMS = EX ? 8 * NT * MMA_NORM_LANES : 0;
    // Stages of the pipeline: as many as fit beside the rest in a block's share of an SM (Hopper's
    // 228 KB for MMA_MIN_BLOCKS blocks, less the 1 KB the hardware keeps for each), at most
    // MMA_STAGES (MMA_STAGES_IN_FLIGHT with products in flight); the slack starts them on a
    // 1024-byte boundary (wgmma's swizzle atoms).
    static constexpr int REST = 8 * NT * BUF_STRIDE * 4 + NORMS * 8 + 1024;
    static constexpr int BUDGET = (228 / MMA_MIN_BLOCKS(NT) - 1) * 1024;
    static constexpr int STAGES =
        StageShape<NT>::fitting(BUDGET, REST, IN_FLIGHT ? MMA_STAGES_IN_FLIGHT : MMA_STAGES);
};

// The per-tile lists of an epilogue warp's ranking rows (EX with lists): lane j holds the state of
// the warp's j-th row (row e + j · MMA_EPI_WARPS).
static_assert(MMA_STEP_TOKENS <= LIST_STEP_MAX, "a block step must fit in a list's room");
static_assert(MMA_STEP_TOKENS <= 4 * 32, "an epilogue lane scores at most four tokens of a step");
static_assert(128 / MMA_EPI_WARPS <= 32, "a lane per row of an epilogue warp");
struct WarpLists {
    // An empty list: every token above -inf reaches it.
    ListState state = {0, 0};

    // Row `row`'s list state, in every lane.
    __device__ __forceinline__ ListState of(u32 row) const {
        const u32 j = row / MMA_EPI_WARPS;
        return ListState{__shfl_sync(0xFFFFFFFFu, state.floor, j), __shfl_sync(0xFFFFFFFFu, state.kept, j)};
    }

    // Ranking row `r`'s list in this block.
    static __device__ __forceinline__ u64* list_of(const Extras& ex, u32 r) {
        return ex.lists + ((size_t)r * ex.norm_slots + blockIdx.x) * LIST_SLOTS;
    }

    // Ranking row `r`'s board (tile_lists.cuh): a word per block.
    static __device__ __forceinline__ u32* board_of(const Extras& ex, u32 r) {
        return ex.tops + (size_t)r * ex.norm_slots;
    }

    // The block step before which the lists read their boards: once every block has published
    // its first step. (H100, eighteenth session: a second read before step 3 cost 9 µs at
    // (2048, 151936), B = 64, and gained nothing elsewhere.)
    static __device__ __forceinline__ bool refreshes(u32 step) { return step == 1; }

    // Before the block's step `step`, the floors of the epilogue warp's rows of a launch of `rows`
    // raised from their boards. With AHEAD (when registers allow it), each row's words are loaded
    // while the previous row's are ranked.
    template <bool AHEAD>
    __device__ __forceinline__ void refresh(const Extras& ex, u32 rows, u32 step) {
        if (!refreshes(step)) return;
        const u32 lane = threadIdx.x & 31, e = (threadIdx.x >> 5) - MMA_WARPS;
        auto ranked = [&](u32 row) { return row < rows && ex.scaled_row[row] != NO_MASK; };
        auto load = [&](BoardWords& words, u32 row) {
            if (ranked(row)) words.load(board_of(ex, ex.scaled_row[row]), ex.norm_slots);
        };
        auto raise = [&](const BoardWords& words, u32 row) {
            ListState st = of(row);
            list_refresh(words, ex.list_keep, st);
            if (lane == row / MMA_EPI_WARPS) state = st;
        };
        if constexpr (AHEAD) {
            BoardWords next;
            load(next, e);
            for (u32 row = e; row < rows; row += MMA_EPI_WARPS) {
                const BoardWords words = next;
                load(next, row + MMA_EPI_WARPS);
                if (ranked(row)) raise(words, row);
            }
        } else {
            for (u32 row = e; row < rows; row += MMA_EPI_WARPS) {
                if (!ranked(row)) continue;
                BoardWords words;
                load(words, row);
                raise(words, row);
            }
        }
    }

    // After the block's steps whose maxima a refresh reads (the one before each refresh), the
    // epilogue warp's rows publish their largest y so far: the maximum of their log-normaliser
    // partials `norms`.
    __device__ __forceinline__ void publish(const Extras& ex, const float2* norms, u32 rows, u32 step) const {
        if (!refreshes(step + 1)) return;
        const u32 lane = threadIdx.x & 31, e = (threadIdx.x >> 5) - MMA_WARPS;
        // Lane l wrote partial l: no other lane's write to wait for.
        for (u32 row = e; row < rows; row += MMA_EPI_WARPS) {
            if (ex.scaled_row[row] == NO_MASK) continue;
            const float m = lane < MMA_NORM_LANES ? norms[row * MMA_NORM_LANES + lane].x : NEG_INF;
            list_publish(m, board_of(ex, ex.scaled_row[row]) + blockIdx.x);
        }
    }

    // One step of row `row` (ranking row `r`): the lanes' four logits from `l`, tokens from `first`.
    // Only a step where some token may reach the floor reads the rest of the state.
    __device__ __forceinline__ void step(const Extras& ex, u32 row, u32 r, const float* l, u32 tokens, u32 first,
                                         float inv_t) {
        const u32 lane = threadIdx.x & 31, i = 4 * lane, j = row / MMA_EPI_WARPS;
        const float fy = floor_y(__shfl_sync(0xFFFFFFFFu, state.floor, j));
        float y[4];
        bool any = false;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            y[q] = i + q < tokens ? __fmul_rn(l[i + q], inv_t) : NEG_INF;
            any |= may_reach(y[q], fy);
        }
        if (!__any_sync(0xFFFFFFFFu, any)) return;
        ListState st = of(row);
        list_append(list_of(ex, r), y, first + i, ex.list_keep, st);
        if (lane == j) state = st;
    }

    // The head of row `row`'s list (ranking row `r`) in slot blockIdx.x.
    __device__ __forceinline__ void finish(const Extras& ex, u32 row, u32 r) const {
        ListHead* heads = ex.heads + (size_t)r * ex.norm_slots;
        list_finish(list_of(ex, r), of(row), heads + blockIdx.x, board_of(ex, r) + blockIdx.x);
        empty_slots_past_grid(heads, ex.norm_slots, ListHead{0, 0, 0}, threadIdx.x & 31, 32);
    }
};

// The best candidate of (row `r`, sample `s`) over the logits `l[i]` of global tokens `first` + i,
// for i = i0, i0 + step, … below `count`, four tokens at a time (16-byte aligned `l`, `step` a
// multiple of 4); 0 when none may reach `to_beat`.
__device__ __forceinline__ u64 best_of_groups(const float* l, u32 i0, u32 step, u32 count, u32 first, const Row& r,
                                              u32 s, float to_beat) {
    u64 best = 0;
    for (u32 i = i0; i < count; i += step) {
        const u32 t = first + i;
        const u64 c = i + 4 <= count && t % 4 == 0
                          ? best_of_four(*reinterpret_cast<const float4*>(l + i), t, r, s, to_beat)
                          : best_over(l + i, 1, (int)min(4u, count - i), t, r, s, to_beat);
        best = max(best, c);
    }
    return best;
}

// Whether candidate `best` may beat what out[] held, `to_beat` (a NaN: nothing yet).
__device__ __forceinline__ bool may_beat(u64 best, float to_beat) {
    return best != 0 && !(unpack_score(best) < to_beat);
}

// The parameters of an epilogue warp's rows, computed once per launch: lane j holds those of the
// warp's j-th row (row e + j · MMA_EPI_WARPS), which each step reads by shuffles rather than by a
// load and a division.
struct WarpRows {
    Row mine;

    __device__ __forceinline__ WarpRows(const RowParams* __restrict__ rows, u32 batch) {
        const u32 row = (threadIdx.x >> 5) - MMA_WARPS + MMA_EPI_WARPS * (threadIdx.x & 31);
        mine = row < batch ? row_of(rows[row]) : Row{};
    }

    __device__ __forceinline__ Row of(u32 row) const {
        const u32 j = row / MMA_EPI_WARPS;
        Row r;
        r.seed = __shfl_sync(0xFFFFFFFFu, mine.seed, j);
        r.offset = __shfl_sync(0xFFFFFFFFu, mine.offset, j);
        r.inv_t = __shfl_sync(0xFFFFFFFFu, mine.inv_t, j);
        r.greedy = __shfl_sync(0xFFFFFFFFu, (int)mine.greedy, j);
        return r;
    }
};

// An epilogue warp's rows of one step's logits: `buf` holds the launch's rows × `tokens` live
// tokens from shard token `tok0` (row stride `stride`). Rows e, e + MMA_EPI_WARPS, … belong to
// epilogue warp e; it walks their (row, sample) pairs in order. With SKIP_DRAWN (EX), rows whose
// samples the selection draws (`Extras::lists_draw`: truncated rows whose per-tile lists it
// finishes, drawing over their survivors with their own noise, finish.cu) draw no candidates here,
// and their log-normaliser partials keep their maxima alone: the selection gives such a row its
// survivors' log-normaliser, and the lists' board reads only the maxima.
template <bool EX, bool SKIP_DRAWN>
__device__ __forceinline__ void score_rows(float* buf, int stride, u32 tok0, u32 tokens, const WarpRows& rows,
                                           u64* __restrict__ out, u32 v_rows, u32 batch, u32 samples,
                                           u32 vocab_offset, const Extras& ex, float2* norms, WarpLists& lists) {
    const u32 lane = threadIdx.x & 31, e = (threadIdx.x >> 5) - MMA_WARPS;
    const u32 pairs = (batch > e ? (batch - e + MMA_EPI_WARPS - 1) / MMA_EPI_WARPS : 0) * samples;
    auto row_of_pair = [&](u32 k) { return e + MMA_EPI_WARPS * (k / samples); };
    float beat_lane = NEG_INF;
    Row p;
    float* l = buf;
    bool draws = true;
    // Pair k is (row, s), followed without a division.
    for (u32 k = 0, row = e, s = 0; k < pairs; ++k) {
        if (k % 32 == 0) {
            // What the launch has found so far for the next 32 pairs, one per lane, read together:
            // tokens that cannot beat it skip their logarithms.
            const u32 q = k + lane;
            const u64* o = &out[(size_t)row_of_pair(q) * samples + q % samples];
            beat_lane = q < pairs ? unpack_score(*reinterpret_cast<const volatile u64*>(o)) : NEG_INF;
        }
        const float to_beat = __shfl_sync(0xFFFFFFFFu, beat_lane, k % 32);
        if (s == 0) {
            p = rows.of(row);
            l = buf + row * stride;
            if constexpr (EX) {
                if constexpr (SKIP_DRAWN) draws = !(ex.lists_draw && ex.scaled_row[row] != NO_MASK);
                // A step is at most 128 tokens: four a lane.
                const u32 i = 4 * lane;
                const int count = i < tokens ? (int)min(4u, tokens - i) : 0;
                if (count > 0) {
                    constrain(l + i, 1, count, vocab_offset + tok0 + i, row, ex);
                    write_scaled(l + i, 1, count, tok0 + i, row, v_rows, p.inv_t, ex);
                }
                if (ex.norms) {
                    // Lanes l and l + 16 share a partial: each sums its values above the partial's
                    // maximum, and lane l adds its sum, then lane l + 16's. (The step before wrote
                    // the partial before its arrival on EMPTY; both lanes have read it before lane
                    // l writes.)
                    float2& part = norms[row * MMA_NORM_LANES + lane % MMA_NORM_LANES];
                    const float2 before = part;
                    const float2 mine = draws ? lse_above(before.x, l + i, count, p.inv_t)
                                              : max_above(before.x, l + i, count, p.inv_t);
                    const float2 other = make_float2(__shfl_xor_sync(0xFFFFFFFFu, mine.x, MMA_NORM_LANES),
                                                     __shfl_xor_sync(0xFFFFFFFFu, mine.y, MMA_NORM_LANES));
                    __syncwarp();
                    if (lane < MMA_NORM_LANES) part = lse_merge3(before, mine, other);
                }
                if (ex.lists && ex.scaled_row[row] != NO_MASK) {
                    lists.step(ex, row, ex.scaled_row[row], l, tokens, vocab_offset + tok0, p.inv_t);
                }
            }
        }
        if (draws) {
            // The step buffer's rows start on 16 bytes: four logits in one load.
            u64 best = best_of_groups(l, 4 * lane, 128, tokens, vocab_offset + tok0, p, s, to_beat);
            if (__any_sync(0xFFFFFFFFu, may_beat(best, to_beat))) {
                best = warp_max_u64(best);
                if (lane == 0) atomicMax(&out[(size_t)row * samples + s], best);
            }
        }
        if (++s == samples) {
            s = 0;
            row += MMA_EPI_WARPS;
        }
    }
}

// Where the block's pipeline stands: the (step, chunk) a stage holds or is next to hold.
struct ChunkCursor {
    u32 tile;  // this warp's tile of the step
    u32 c;     // K chunk
    u32 slot;  // pipeline stage
    __device__ __forceinline__ void advance(u32 chunks, u32 stages) {
        if (++c == chunks) {
            c = 0;
            tile += MMA_WARPS;
        }
        if (++slot == stages) slot = 0;
    }
};

// The block's share of the 16-token tiles of `v_rows` (a persistent grid: contiguous and balanced)
// and its steps of one tile per multiplying warp.
struct BlockTiles {
    u32 first, end, steps;
    __device__ __forceinline__ explicit BlockTiles(u32 v_rows) {
        const u32 tiles = (v_rows + 15) / 16;
        first = (u32)((u64)tiles * blockIdx.x / gridDim.x);
        end = (u32)((u64)tiles * (blockIdx.x + 1) / gridDim.x);
        steps = (end - first + MMA_WARPS - 1) / MMA_WARPS;
    }
    // The first token of warp `warp`'s tile in step `k`, and how many of its 16 tokens are live.
    __device__ __forceinline__ u32 tile_of(u32 k, u32 warp) const { return first + k * MMA_WARPS + warp; }
    __device__ __forceinline__ u32 live_tokens(u32 tile, u32 v_rows) const {
        return tile < end ? min(16u, v_rows - 16 * tile) : 0;
    }
};

// What a ring of stages needs; each kind of ring reads its part.
struct RingArgs {
    u16* stages;
    const u16* w;
    const u16* h;
    u32 v_rows, dim, batch;
    BlockTiles bt;
    // TMA: stage s's mbarrier at bars[s · bar_stride], and the tensor maps of W and H.
    u64* bars;
    u32 bar_stride;
    const TensorMap* w_map;
    const TensorMap* h_map;
};

// The multiplying warps' side of the pipeline: the block's (step, chunk) pairs staged in order
// into the ring of `Shared::STAGES` stages, one commit group each (empty past the end), and
// multiplied from it. Constructing it stages the first chunks.
template <typename Shared, typename Tiles>
struct ChunkRing {
    // Chunks staged ahead of the one multiplied: the stages left once it and the chunks whose
    // products may still be running have theirs.
    static constexpr int AHEAD = Shared::STAGES - 1 - Tiles::IN_FLIGHT;
    static_assert(AHEAD >= 1, "the pipeline needs a stage to load into");
    u16* stages;
    const u16* __restrict__ w;
    const u16* __restrict__ h;
    u32 v_rows, dim, batch, end, chunks, total;
    ChunkCursor load;
    u32 issued = 0;
    u32 slot = 0;  // the stage the next chunk multiplies from

    __device__ __forceinline__ explicit ChunkRing(const RingArgs& a)
        : stages(a.stages), w(a.w), h(a.h), v_rows(a.v_rows), dim(a.dim), batch(a.batch), end(a.bt.end) {
        chunks = (dim + MMA_KC - 1) / MMA_KC;
        total = a.bt.steps * chunks;
        load = ChunkCursor{a.bt.first + (threadIdx.x >> 5), 0, 0};
#pragma unroll
        for (int s = 0; s < AHEAD; ++s) issue();
    }

    __device__ __forceinline__ void issue() {
        if (issued < total) {
            u16* stage = stages + load.slot * Shared::STAGE_ELEMS;
            stage_rows<false, Shared::H_ROWS, MMA_WARPS * 32>(stage, h, 0, load.c, dim, threadIdx.x,
                                                                [&](u32 r) { return r < batch; });
            const u32 tok0 = load.tile * 16;
            stage_rows<true, 16, 32>(stage + Shared::H_STAGE + (threadIdx.x >> 5) * Shared::W_TILE, w, tok0, load.c,
                                     dim, threadIdx.x & 31,
                                     [&](u32 r) { return load.tile < end && tok0 + r < v_rows; });
            load.advance(chunks, Shared::STAGES);
        }
        ++issued;
        cp_async_commit();
    }

    // One step's chunks into `acc`; the last chunk's products may still be running (acc.drain()).
    __device__ __forceinline__ void multiply_step(Tiles& acc) {
        for (u32 c = 0; c < chunks; ++c) {
            cp_async_wait<AHEAD - 1>();
            // wgmma reads shared memory through the async proxy: make this thread's copies visible
            // to it.
            if constexpr (Tiles::WGMMA) asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            // Every multiplying warp is done with the stage the next line refills: the previous
            // chunk's, or with products in flight the one before.
            ring_sync();
            issue();
            const u16* stage = stages + slot * Shared::STAGE_ELEMS;
            acc.chunk(stage, stage + Shared::H_STAGE, Shared::W_TILE);
            if (++slot == Shared::STAGES) slot = 0;
        }
    }

    // No copy left in flight.
    __device__ __forceinline__ void finish() { cp_async_wait<0>(); }
};

#if WGMMA_AVAILABLE
// The ring of stages filled by TMA (tma.cuh): per chunk one copy of H's rows and one of the step's
// 128 rows of W, issued by thread 0 once every warp is done with the stage, and counted on the
// stage's mbarrier, which the warps wait on. The multiplying warps (all MMA_WARPS of them) build it.
// H100, sixteenth session: the cp.async ring took 1.2× as long in fused_wide.cu at B = 256.
template <typename Shared, typename Tiles>
struct TmaRing {
    static constexpr int AHEAD = Shared::STAGES - 1 - Tiles::IN_FLIGHT;
    static_assert(AHEAD >= 1, "the pipeline needs a stage to load into");
    u16* stages;
    u64* bars;  // stage s's at bars[s · bar_stride]: its chunk has landed (phase n / STAGES for the n-th)
    u32 bar_stride;
    const TensorMap& w_map;
    const TensorMap& h_map;
    u32 chunks, total;
    ChunkCursor load;
    u32 issued = 0, used = 0, slot = 0;

    __device__ __forceinline__ explicit TmaRing(const RingArgs& a)
        : stages(a.stages), bars(a.bars), bar_stride(a.bar_stride), w_map(*a.w_map), h_map(*a.h_map) {
        chunks = (a.dim + MMA_KC - 1) / MMA_KC;
        total = a.bt.steps * chunks;
        load = ChunkCursor{a.bt.first, 0, 0};
        if (threadIdx.x == 0) {
            for (int s = 0; s < Shared::STAGES; ++s) mbar_init(bars + s * bar_stride, 1);
            mbar_init_fence();
        }
        ring_sync();
#pragma unroll
        for (int s = 0; s < AHEAD; ++s) issue();
    }

    __device__ __forceinline__ void issue() {
        if (issued < total) {
            if (threadIdx.x == 0) {
                u16* stage = stages + load.slot * Shared::STAGE_ELEMS;
                u64* bar = bars + load.slot * bar_stride;
                mbar_expect_bytes(bar, Shared::STAGE_ELEMS * 2);
                tma_load(stage, h_map, load.c * MMA_KC, 0, bar);
                tma_load(stage + Shared::H_STAGE, w_map, load.c * MMA_KC, load.tile * 16, bar);
            }
            load.advance(chunks, Shared::STAGES);
        }
        ++issued;
    }

    __device__ __forceinline__ void multiply_step(Tiles& acc) {
        for (u32 c = 0; c < chunks; ++c) {
            mbar_wait(bars + slot * bar_stride, used / Shared::STAGES);
            // Every multiplying warp is done with the stage the next line refills.
            ring_sync();
            issue();
            const u16* stage = stages + slot * Shared::STAGE_ELEMS;
            acc.chunk(stage, stage + Shared::H_STAGE, Shared::W_TILE);
            ++used;
            if (++slot == Shared::STAGES) slot = 0;
        }
    }

    // Nothing to wait for: every copy issued was waited for by the chunk it holds.
    __device__ __forceinline__ void finish() {}
};

#endif

// The ring of a variant: TMA for the widest wgmma variant (16 n-tiles), cp.async for the others.
// H100, sixteenth session: with TMA, B = 128 took 0.92–0.98 of the cp.async ring's time on every
// shape of DESIGN.md §6, but B = 64 (8 n-tiles) 1.036 of it at D = 8192; 4 n-tiles spilled.
#if WGMMA_AVAILABLE
template <typename Shared, typename Tiles>
using RingOf =
    typename Pick<Tiles::WGMMA && Shared::ROWS == 128, TmaRing<Shared, Tiles>, ChunkRing<Shared, Tiles>>::type;
#else
template <typename Shared, typename Tiles>
using RingOf = ChunkRing<Shared, Tiles>;
#endif

template <typename E, int NT, bool EX>
__device__ void fused_mma(const u16* __restrict__ w, const u16* __restrict__ h, const RowParams* __restrict__ rows,
                          u64* __restrict__ out, u32 v_rows, u32 dim, u32 batch, u32 samples, u32 vocab_offset,
                          const Extras& ex, const TensorMap& w_map, const TensorMap& h_map) {
    typedef typename Pick<wgmma_variant<NT>(), WgmmaTiles<E, NT>, SyncTiles<E, NT>>::type Tiles;
    typedef MmaShared<NT, EX, Tiles::BUF_PAD, Tiles::IN_FLIGHT> Shared;
    static_assert(Shared::STAGES >= 2, "the pipeline needs two stages");
    unsigned char* smem = aligned_shared();
    u16* stages = reinterpret_cast<u16*>(smem);
    float* buf = reinterpret_cast<float*>(smem + Shared::STAGES * Shared::STAGE_ELEMS * 2);
    float2* norms = reinterpret_cast<float2*>(buf + Shared::ROWS * Shared::BUF_STRIDE);
    const u32 warp = threadIdx.x >> 5, lane = threadIdx.x & 31, e = warp - MMA_WARPS;
    const bool multiplies = warp < MMA_WARPS, lse = EX && ex.norms;
    // FULL and EMPTY sit in the padding of the step buffer's first row, which no step uses.
    static_assert(Tiles::BUF_PAD * 4 >= 16, "no room for the barriers");
    u64* const full = reinterpret_cast<u64*>(buf + MMA_STEP_TOKENS);
    u64* const empty = full + 1;
    if (threadIdx.x == 0) {
        mbar_init(full, MMA_WARPS * 32);
        mbar_init(empty, MMA_EPI_WARPS * 32);
    }
    __syncthreads();
    const BlockTiles bt(v_rows);

    // Hand-over k: the multiplying warps have run step k's chunks and the epilogue warps have
    // scored step k − 1 (EMPTY); then the multiplying warps write step k into the step buffer
    // (FULL). Each kind of warp runs its own loop, so that neither holds the other's registers.
    if (multiplies) {
        // TMA: stage s's barrier in the padding of step-buffer row 1 + s, which no step uses.
        static_assert(!Tiles::WGMMA || Shared::ROWS > Shared::STAGES, "a padded row per stage's barrier");
        u64* bars = reinterpret_cast<u64*>(buf + Shared::BUF_STRIDE + MMA_STEP_TOKENS);
        RingOf<Shared, Tiles> ring(
            RingArgs{stages, w, h, v_rows, dim, batch, bt, bars, Shared::BUF_STRIDE / 2, &w_map, &h_map});
        Tiles acc;
        acc.zero();
        for (u32 k = 0; k < bt.steps; ++k) {
            ring.multiply_step(acc);
            acc.drain();
            mbar_wait(empty, k);
            acc.to_buffer(buf, Shared::BUF_STRIDE);
            // Zeroed once per step: a test in every chunk would cost a select per element.
            acc.zero();
            mbar_arrive(full);
        }
        ring.finish();
        return;
    }
    if (lse) {
        // Rows e, e + MMA_EPI_WARPS, … are epilogue warp e's.
        for (u32 r = e; r < Shared::ROWS; r += MMA_EPI_WARPS) {
            if (lane < MMA_NORM_LANES) norms[r * MMA_NORM_LANES + lane] = make_float2(NEG_INF, 0.0f);
        }
        __syncwarp();
    }
    WarpLists lists;
    const WarpRows row_params(rows, min(batch, (u32)Shared::ROWS));
    for (u32 k = 0; k < bt.steps; ++k) {
        // The buffer is free for step k: at first, then once step k − 1 is scored.
        mbar_arrive(empty);
        mbar_wait(full, k);
        const u32 tile0 = bt.tile_of(k, 0), tok0 = tile0 * 16;
        const u32 tokens = min(min(16 * (bt.end - tile0), v_rows - tok0), (u32)MMA_STEP_TOKENS);
        // The registers of the two-block widths leave no room for a second row's words.
        if (EX && ex.lists) lists.refresh<MMA_MIN_BLOCKS(NT) == 1>(ex, min(batch, (u32)Shared::ROWS), k);
        // The two-block widths have no register to skip rows drawn elsewhere: they draw them too.
        score_rows<EX, MMA_MIN_BLOCKS(NT) == 1>(buf, Shared::BUF_STRIDE, tok0, tokens, row_params, out, v_rows, batch, samples, vocab_offset,
                       ex, norms, lists);
        if (EX && ex.lists) lists.publish(ex, norms, min(batch, (u32)Shared::ROWS), k);
    }
    if (EX && ex.lists) {
        for (u32 r = e; r < min(batch, (u32)Shared::ROWS); r += MMA_EPI_WARPS) {
            if (ex.scaled_row[r] != NO_MASK) lists.finish(ex, r, ex.scaled_row[r]);
        }
    }
    if (lse) {
        // Each row's partials (lane l wrote partial l), merged in a fixed tree (lse_merge is
        // symmetric): deterministic.
        for (u32 r = e; r < min(batch, (u32)Shared::ROWS); r += MMA_EPI_WARPS) {
            float2 part = lane < MMA_NORM_LANES ? norms[r * MMA_NORM_LANES + lane] : make_float2(NEG_INF, 0.0f);
#pragma unroll
            for (int o = MMA_NORM_LANES / 2; o > 0; o >>= 1) {
                part = lse_merge(part, make_float2(__shfl_xor_sync(0xFFFFFFFFu, part.x, o),
                                                   __shfl_xor_sync(0xFFFFFFFFu, part.y, o)));
            }
            float2* row_norms = ex.norms + (size_t)r * ex.norm_slots;
            if (lane == 0) row_norms[blockIdx.x] = part;
            empty_slots_past_grid(row_norms, ex.norm_slots, make_float2(NEG_INF, 0.0f), lane, 32);
        }
    }
}

#define FUSED_MMA_NT(E, NT)                                                                                     \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS(NT))                               \
        fused_mma_##E##_n##NT(const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows, u32 dim, \
                              u32 batch, u32 samples, u32 vocab_offset, const __grid_constant__ TensorMap w_map,  \
                              const __grid_constant__ TensorMap h_map) {                                       \
        fused_mma<E, NT, false>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, Extras{}, w_map, h_map); \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS(NT))                               \
        fused_mma_##E##_n##NT##_ex(const u16* w, const u16* h, const RowParams* rows, u64* out, u32 v_rows,     \
                                   u32 dim, u32 batch, u32 samples, u32 vocab_offset, Extras ex,                \
                                   const __grid_constant__ TensorMap w_map, const __grid_constant__ TensorMap h_map) { \
        fused_mma<E, NT, true>(w, h, rows, out, v_rows, dim, batch, samples, vocab_offset, ex, w_map, h_map);   \
    }
#define FUSED_MMA(E)                                                                                           \
    FUSED_MMA_NT(E, 1) FUSED_MMA_NT(E, 2) FUSED_MMA_NT(E, 4) FUSED_MMA_NT(E, 8) FUSED_MMA_NT(E, 16)

FUSED_MMA(Bf16)
FUSED_MMA(F16)

// ---- per-tile candidate lists of ranking rows (DESIGN.md §3.6), kept by the fused epilogue -------
//
// Where every ranking row of a launch keeps at most LIST_KEEP_MAX keys (top-k ≤ 64, top-N), the
// tensor-core `_ex` kernel keeps, per (ranking row, block), a list of the keys pack(y, token) of
// its tokens instead of writing every y out: the keys at or above the list's floor, which is never
// above the row's `keep`-th largest key, so the lists hold the row's `keep` most likely tokens.
// select_lists (select.cu) merges the blocks' lists of each row.
//
// A list is LIST_SLOTS keys in global memory, written by the one epilogue warp that owns the row.
// Its first step sets the floor from the step's own keys; a step appends at most LIST_STEP_MAX keys
// (four per lane: fused_mma.cu's steps are at most that long); before a step that may not fit, the
// warp raises the floor (list_compact) and keeps only the keys at or above it. A step whose y are
// all below the floor's y costs one comparison each and a vote.
//
// The blocks share what they have seen: each publishes on a board (`Extras::tops`, a word per
// (row, block)) the upper word of its largest key so far, and a list raises its floor to the
// keep-th largest word it reads there (list_refresh): `keep` words of distinct blocks are the upper
// words of `keep` keys of the row, so that floor never passes the row's keep-th largest. A block's
// floor alone is the keep-th largest of the few tokens it has seen, and nearly every step would
// append and every few steps compact; after a refresh far fewer do. The board is zero between
// launches: a block clears its own words when it finishes, and a word read as 0 (not yet
// published, or cleared) only weakens the floor. (src/backend.rs `list_slots` says where lists are
// kept.)

#define LIST_SLOTS 256
#define LIST_STEP_MAX 128
#define LIST_KEEP_MAX 64

// What a list holds at the end of the launch: `ListHead` in src/launch.rs (16 bytes).
struct ListHead {
    u32 kept;       // keys in the list
    u32 compacted;  // 1 when the list may have left keys out (its row then has at least `keep` tokens
                    // above -inf); 0 when it holds every token of the block whose y is above -inf
    u64 top;        // the largest key (0 when none)
};

// A list's state, the same in every lane of the warp that owns it.
struct ListState {
    u64 floor;  // no key below it is kept; 0 while the list holds every key above -inf
    u32 kept;
};

// The y of the floor's upper word: a y below it has a key below the floor (-inf while the floor is
// 0).
__device__ __forceinline__ float floor_y(u64 floor) { return floor ? unpack_score(floor) : NEG_INF; }

// The lists live in global memory, which the stream of W would push out of L2 between two steps of
// a row: their stores ask L2 to keep them.
__device__ __forceinline__ void list_store(u64* p, u64 v) {
    asm volatile(
        "{\n.reg .b64 policy;\ncreatepolicy.fractional.L2::evict_last.b64 policy, 1.0;\n"
        "st.global.L2::cache_hint.u64 [%0], %1, policy;\n}" ::"l"(p),
        "l"(v)
        : "memory");
}

// Where the lanes whose `in` is set write their keys: from `kept` on, in lane order (the lane's
// slot is returned); `kept` counts them in every lane. Called by the whole warp.
__device__ __forceinline__ u32 list_slot(u32& kept, bool in) {
    const u32 ballot = __ballot_sync(0xFFFFFFFFu, in);
    const u32 at = kept + __popc(ballot & ((1u << (threadIdx.x & 31)) - 1));
    kept += __popc(ballot);
    return at;
}

// A floor for the warp's keys `k` (N per lane, 0: none): at least `keep` keys are at or above it,
// and at most `target` unless fewer would leave fewer than `keep`; 0 when there are fewer than
// `keep`. Built bit by bit from the top, as a radix select of the `keep`-th largest key, stopping
// as soon as few enough keys are above it. Called by the whole warp.
template <typename K, int N>
__device__ K floor_of(const K (&k)[N], u32 keep, u32 target) {
    K f = 0;
    for (int bit = 8 * sizeof(K) - 1; bit >= 0; --bit) {
        const K up = f | ((K)1 << bit);
        u32 n = 0;
#pragma unroll
        for (int j = 0; j < N; ++j) n += k[j] >= up;
        n = __reduce_add_sync(0xFFFFFFFFu, n);
        if (n >= keep) {
            f = up;
            if (n <= target) break;
        }
    }
    return f;
}

// How many keys a compaction leaves at most: a quarter of the way from `keep` to the room a step
// needs (the nearer to `keep`, the fewer later compactions, the more bits to find the floor).
__device__ __forceinline__ u32 list_target(u32 keep) { return keep + (LIST_SLOTS - LIST_STEP_MAX - keep) / 4; }

// Raises the floor of the warp's list of `kept` keys (more than LIST_SLOTS − LIST_STEP_MAX) to
// floor_of's over the keys at or above it, and moves those at or above the new floor to the front;
// returns how many. (Keys appended before a refresh may lie below the floor.) Called by the whole
// warp.
__device__ u32 list_compact(u64* list, u32 kept, u32 keep, u64& floor) {
    constexpr int PER_LANE = LIST_SLOTS / 32;
    const u32 lane = threadIdx.x & 31;
    __syncwarp();
    u64 k[PER_LANE];
#pragma unroll
    for (int j = 0; j < PER_LANE; ++j) {
        const u32 i = j * 32 + lane;
        k[j] = i < kept ? list[i] : 0;
    }
    const u64 f = max(floor, floor_of(k, keep, list_target(keep)));
    floor = f;
    __syncwarp();
    u32 at = 0;
#pragma unroll
    for (int j = 0; j < PER_LANE; ++j) {
        const u32 slot = list_slot(at, k[j] >= f);
        if (k[j] >= f) list_store(list + slot, k[j]);
    }
    return at;
}

// Whether a token of scaled logit y may reach a list whose floor has y `floor_y` (NaN, the largest
// key, always may; -inf, a masked token, never).
__device__ __forceinline__ bool may_reach(float y, float floor_y) { return y != NEG_INF && !(y < floor_y); }

// Appends the keys of the lane's four scaled logits `y` (tokens `first` …; -inf past the step) that
// reach the floor of the list `st` describes, compacting first when the step may not fit. A y
// above the floor's y reaches it; only a tie (or a NaN) compares keys. The keys go in order of
// their place among the lane's four, then of lane: a vote each, no prefix sum. Called by the whole
// warp.
__device__ __forceinline__ void list_append(u64* list, const float (&y)[4], u32 first, u32 keep, ListState& st) {
    if (st.kept > LIST_SLOTS - LIST_STEP_MAX) st.kept = list_compact(list, st.kept, keep, st.floor);
    if (st.kept == 0 && st.floor == 0) {
        // A list's first step: the floor from the step's own keys, rather than all of them written
        // (none, so that `floor != 0` keeps meaning that keys were left out, when it would leave
        // none out).
        u64 k[4];
        u32 live = 0;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            k[q] = y[q] == NEG_INF ? 0 : pack(y[q], first + q);
            live += k[q] != 0;
        }
        const u64 f = floor_of(k, keep, list_target(keep));
        u32 above = 0;
#pragma unroll
        for (int q = 0; q < 4; ++q) above += f != 0 && k[q] >= f;
        const bool leaves_out = __reduce_add_sync(0xFFFFFFFFu, above) < __reduce_add_sync(0xFFFFFFFFu, live);
        st.floor = leaves_out ? f : 0;
    }
    const float fy = floor_y(st.floor);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const bool in = may_reach(y[q], fy) && (y[q] > fy || pack(y[q], first + q) >= st.floor);
        const u32 slot = list_slot(st.kept, in);
        if (in) list_store(list + slot, pack(y[q], first + q));
    }
}

// Publishes the largest of the lanes' `y` (y of tokens of the block, -inf: none) as the block's
// word `board_word` of the row's board: the upper word of that token's key (the words order as the
// y). Lane 0 writes every word of a block, so that list_finish's clearing comes after them. Called
// by the whole warp.
__device__ __forceinline__ void list_publish(float y, u32* board_word) {
    const u32 word = __reduce_max_sync(0xFFFFFFFFu, y == NEG_INF ? 0u : (u32)(pack(y, 0) >> 32));
    if ((threadIdx.x & 31) == 0 && word) *reinterpret_cast<volatile u32*>(board_word) = word;
}

// A row's board as the lanes hold it for list_refresh: `slots` words (the first 32 · BOARD_READS,
// when there are more), 0 past them.
#define BOARD_READS 9
struct BoardWords {
    u32 w[BOARD_READS];
    __device__ __forceinline__ void load(const u32* board, u32 slots) {
        const u32 lane = threadIdx.x & 31;
#pragma unroll
        for (int j = 0; j < BOARD_READS; ++j) {
            const u32 i = j * 32 + lane;
            w[j] = i < slots ? *reinterpret_cast<const volatile u32*>(board + i) : 0;
        }
    }
};

// Raises the floor of the list `st` describes to the keep-th largest of its row's board words:
// the smallest key of that word. Called by the whole warp.
__device__ __forceinline__ void list_refresh(const BoardWords& board, u32 keep, ListState& st) {
    st.floor = max(st.floor, (u64)floor_of(board.w, keep, list_target(keep)) << 32);
}

// The head of the list `st` describes, at the end of the launch: its largest key read back, every
// lane's loads in flight together. Its word of the board is cleared for the next launch, by the
// lane that published it. Called by the whole warp.
__device__ __forceinline__ void list_finish(const u64* list, const ListState& st, ListHead* head, u32* board_word) {
    const u32 lane = threadIdx.x & 31;
    __syncwarp();
    u64 top = 0;
#pragma unroll
    for (int j = 0; j < LIST_SLOTS / 32; ++j) {
        const u32 i = j * 32 + lane;
        top = max(top, i < st.kept ? list[i] : 0);
    }
    top = warp_max_u64(top);
    if (lane == 0) {
        *head = ListHead{st.kept, st.floor != 0, top};
        *reinterpret_cast<volatile u32*>(board_word) = 0;
    }
}

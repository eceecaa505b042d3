// ---- truncated rows finished from their whole row, on the device: the exact fallback ------------
//
// A truncated row whose kept keys cannot certify its cut-off (finish_keys in select.cu found it
// so: top-p or min-p without top-k whose survivors outnumber the kept keys; its maximum is finite)
// is finished here from every one of its scaled logits, as the core finishes it from its complete
// ranked row (`finish_row`), so that no call waits for the host. By the block that sorted its
// kept keys.
//
// The survivors are a prefix of the rank order: the keys at or above a threshold key.
// - top-p: the largest y* whose tokens with y ≥ y* hold at least p of the row's mass, by bisection
//   on the order of y (each step one pass over the row, summing exp(y − y_max) in f64 in a fixed
//   order); of the tokens tied at y*, the lowest ids, as many as the sequential sum in rank order
//   needs to reach p;
// - min-p: then the prefix's tokens with exp(y − y_max) ≥ min_p.
// Top-k needs nothing here: a row with top-k always certifies from its k kept keys (cut_off in
// finish.cu).
// Sampling and the survivors' log-normaliser are those of finish_truncated.

#define WHOLE_THREADS SELECT_THREADS
#define WHOLE_WARPS (WHOLE_THREADS / 32)

// Block-wide reductions in a fixed order (shuffles within warps, then warps in order), so that a
// row's sums are the same on every run. `scratch` holds one value per warp and the result.
template <typename T, typename Op>
__device__ T block_reduce(T v, T* scratch, Op op) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xFFFFFFFFu, v, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        T r = scratch[0];
        for (int w = 1; w < WHOLE_WARPS; ++w) r = op(r, scratch[w]);
        scratch[WHOLE_WARPS] = r;
    }
    __syncthreads();
    return scratch[WHOLE_WARPS];
}

struct SumOp {
    template <typename T>
    __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
    __device__ u64 operator()(u64 a, u64 b) const { return a > b ? a : b; }
};

// The order of y in a key's upper word (pack of common.cuh).
__device__ __forceinline__ u32 y_order(float y) { return (u32)(pack(y, 0) >> 32); }

// Σ exp(y − top) over the row's finite y whose order is at least `from`.
__device__ double mass_from(const float* y, u32 v_rows, double top, u32 from, double* scratch) {
    double s = 0.0;
    for (u32 i = threadIdx.x; i < v_rows; i += WHOLE_THREADS) {
        const float v = y[i];
        if (isfinite(v) && y_order(v) >= from) s += exp((double)v - top);
    }
    return block_reduce(s, scratch, SumOp{});
}

// The key of the `c`-th (from 1) lowest token whose y has order `order`: each thread counts the
// ties in its own contiguous range of tokens, and the ranges are walked in order.
__device__ u64 tied_key(const float* y, u32 v_rows, u32 vocab_offset, u32 order, u32 c, u32* counts) {
    __shared__ u64 key;
    const u32 per = (v_rows + WHOLE_THREADS - 1) / WHOLE_THREADS;
    const u32 lo = min(v_rows, threadIdx.x * per), hi = min(v_rows, lo + per);
    u32 n = 0;
    for (u32 i = lo; i < hi; ++i) n += y_order(y[i]) == order;
    // `counts` may still be read as the result of a reduction.
    __syncthreads();
    counts[threadIdx.x] = n;
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 before = 0, t = 0;
        while (t + 1 < WHOLE_THREADS && before + counts[t] < c) before += counts[t++];
        counts[WHOLE_THREADS] = t;
        counts[WHOLE_THREADS + 1] = c - before;
    }
    __syncthreads();
    if (threadIdx.x == counts[WHOLE_THREADS]) {
        u32 left = counts[WHOLE_THREADS + 1];
        for (u32 i = lo; i < hi; ++i) {
            if (y_order(y[i]) == order && --left == 0) {
                key = pack(y[i], vocab_offset + i);
                break;
            }
        }
    }
    __syncthreads();
    return key;
}

// The threshold key of a finite row's top-p prefix (1: every live token, when the whole row holds
// less than p of `mass`).
__device__ u64 top_p_threshold(const float* y, u32 v_rows, u32 vocab_offset, double top, double target,
                               double* scratch, u32* counts) {
    u32 lo = 0, hi = y_order((float)top) + 1;
    if (mass_from(y, v_rows, top, lo, scratch) < target) return 1;
    // mass_from(lo) ≥ target > mass_from(hi): lo ends at the order of an actual y, y*.
    while (hi - lo > 1) {
        const u32 mid = lo + (hi - lo) / 2;
        if (mass_from(y, v_rows, top, mid, scratch) >= target) lo = mid; else hi = mid;
    }
    const double above = mass_from(y, v_rows, top, lo + 1, scratch);
    u32 ties = 0;
    for (u32 i = threadIdx.x; i < v_rows; i += WHOLE_THREADS) ties += y_order(y[i]) == lo;
    ties = block_reduce(ties, counts, SumOp{});
    // The sequential sum of the rank order over the tied tokens, lowest ids first.
    const double w = exp((double)unpack_score((u64)lo << 32) - top);
    double kept = above;
    u32 c = 0;
    while (c < ties) {
        kept += w;
        ++c;
        if (kept >= target) break;
    }
    return tied_key(y, v_rows, vocab_offset, lo, c, counts);
}

__device__ void finish_whole_row(const SelectArgs& a, u32 b, u32 r) {
    __shared__ double scratch[WHOLE_WARPS + 1];
    __shared__ u64 keys[WHOLE_WARPS + 1];
    __shared__ u32 counts[WHOLE_THREADS + 2];
    const RankParams q = a.ranks[r];
    const float* y = a.scaled + (size_t)r * a.v_rows;
    const Row row = row_of(a.rows[b]);

    u64 best = 0;
    for (u32 i = threadIdx.x; i < a.v_rows; i += WHOLE_THREADS) best = max(best, rank_key(y, i, a.vocab_offset));
    const float top = unpack_score(block_reduce(best, keys, MaxOp{}));
    // Survivors: live keys ≥ threshold with exp(y − top) ≥ min_w.
    u64 threshold = 1;
    if (q.top_p < 1.0f) {
        const RowNorm total = a.norms[b];
        const double mass = total.sum == 0.0 ? 0.0 : total.sum * exp((double)total.max - (double)top);
        threshold = top_p_threshold(y, a.v_rows, a.vocab_offset, top, (double)q.top_p * mass, scratch, counts);
    }
    const double min_w = q.min_p > 0.0f ? (double)q.min_p : 0.0;
    auto survives = [&](u32 i, u64 key) {
        return key != 0 && key >= threshold && (min_w == 0.0 || exp((double)y[i] - (double)top) >= min_w);
    };

    double sum = 0.0;
    u32 survivors = 0;
    for (u32 i = threadIdx.x; i < a.v_rows; i += WHOLE_THREADS) {
        const u64 key = rank_key(y, i, a.vocab_offset);
        if (survives(i, key)) {
            sum += exp((double)y[i] - (double)top);
            ++survivors;
        }
    }
    sum = block_reduce(sum, scratch, SumOp{});
    survivors = block_reduce(survivors, counts, SumOp{});

    // Per sample, Gumbel-max over the survivors with the row's noise; a thread takes four
    // consecutive tokens at a time, so one Philox evaluation serves a group of four.
    for (u32 s = 0; s < a.samples; ++s) {
        u64 mine = 0;
        uint4 words = make_uint4(0, 0, 0, 0);
        u32 group = 0xFFFFFFFFu;
        for (u32 base = 4 * threadIdx.x; base < a.v_rows; base += 4 * WHOLE_THREADS) {
            for (u32 i = base; i < min(base + 4, a.v_rows); ++i) {
                const u64 key = rank_key(y, i, a.vocab_offset);
                if (!survives(i, key)) continue;
                if (row.greedy) {
                    mine = max(mine, key);
                    continue;
                }
                const u32 t = a.vocab_offset + i;
                if ((t >> 2) != group) {
                    group = t >> 2;
                    words = noise_words(row, s, t);
                }
                mine = max(mine, pack(__fadd_rn(y[i], gumbel_from_word(word_of(words, t))), t));
            }
        }
        mine = block_reduce(mine, keys, MaxOp{});
        if (threadIdx.x == 0) a.cands[(size_t)b * a.samples + s] = mine;
    }
    if (threadIdx.x == 0) {
        a.norms[b] = RowNorm{survivors ? top : NEG_INF, 0, sum};
        a.counts[4 * r + 2] = survivors;
        a.counts[4 * r + 3] = FINISHED_ON_DEVICE;
    }
}

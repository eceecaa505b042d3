// ---- truncated rows finished on the device, from their sorted most likely keys ----------------
//
// The cut-off of DESIGN.md §3.6 and the samples of a truncated row, as the core's
// `Truncation::survivors` and `survivors::finish_row` compute them: weights exp(y − y_max) in f64,
// the top-p prefix summed in rank order by one thread, Gumbel-max over the survivors with the row's
// own noise (so a truncated row draws the untruncated row's token whenever that token survives),
// and the survivors' log-normaliser. A row whose maximum is not finite (NaN: a bad row; +inf, which
// takes every sample) keeps its first token alone, as the core's. A row whose list cannot certify
// its cut-off is left to the exact fallback over its whole row (finish_whole.cu).

// What a ranking row asks for (`RankParams` in src/launch.rs, 16 bytes).
struct RankParams {
    u32 top_k;      // 0: none
    float top_p;    // ≥ 1: none
    float min_p;    // ≤ 0: none
    u32 truncated;  // 0: the row only ranks for its top-N logprobs
};

// counts[4r + 3]: whether the row's samples and log-normaliser are final (a row that ranks only for
// its top-N never is: the host copies its list, or decode_top reads it).
#define UNFINISHED 0u
#define FINISHED_ON_DEVICE 1u

__device__ __forceinline__ u32 key_token(u64 key) { return 0xFFFFFFFFu - (u32)key; }

// The survivors of `n` keys sorted descending (`complete`: they are every token of finite y), or
// -1 when the list cannot certify the cut-off. `weight[i]` = exp(y_i − y_0) in f64. One thread.
__device__ int cut_off(const RankParams& q, const double* weight, u32 n, bool complete, RowNorm total, double top) {
    u32 len = n;
    bool whole = complete;
    if (q.top_k) {
        len = min(q.top_k, n);
        whole = true;
    }
    if (q.top_p < 1.0f) {
        double mass = 0.0;
        if (q.top_k) {
            for (u32 i = 0; i < len; ++i) mass += weight[i];
        } else {
            mass = total.sum == 0.0 ? 0.0 : total.sum * exp((double)total.max - top);
        }
        const double target = (double)q.top_p * mass;
        double kept = 0.0;
        u32 i = 0;
        for (; i < len; ++i) {
            kept += weight[i];
            if (kept >= target) break;
        }
        if (i < len) {
            len = i + 1;
            whole = true;
        } else if (!whole) {
            return -1;
        }
    }
    if (q.min_p > 0.0f) {
        u32 i = 0;
        while (i < len && weight[i] >= (double)q.min_p) ++i;
        if (i < len) {
            len = i;
            whole = true;
        } else if (!whole) {
            return -1;
        }
    }
    return whole ? (int)len : -1;
}

// Finishes truncated row `b` from its `n` keys in `set` (shared, sorted descending): writes its
// `samples` candidates to `cands`, its survivors' log-normaliser to `norm`; returns the survivors,
// or -1 for the fallback over the whole row. Every thread of the block calls it.
__device__ int finish_truncated(const u64* set, u32 n, bool complete, const RankParams& q, const Row& row, u32 samples,
                                u64* __restrict__ cands, RowNorm* norm, double* weight) {
    __shared__ int survivors;
    const float top = n ? unpack_score(set[0]) : NEG_INF;
    const bool finite = isfinite(top);
    for (u32 i = threadIdx.x; finite && i < n; i += blockDim.x) {
        weight[i] = exp((double)unpack_score(set[i]) - (double)top);
    }
    __syncthreads();
    if (threadIdx.x == 0 && n > 0 && !finite) {
        // `survivors_norm` of the core: a NaN maximum is skipped, leaving (-inf, 0); +inf gives a
        // NaN sum.
        survivors = 1;
        *norm = isnan(top) ? RowNorm{NEG_INF, 0, 0.0} : RowNorm{top, 0, __longlong_as_double(0x7FF8000000000000ll)};
    } else if (threadIdx.x == 0) {
        survivors = n == 0 ? 0 : cut_off(q, weight, n, complete, *norm, (double)top);
        if (survivors >= 0) {
            double sum = 0.0;
            for (int i = 0; i < survivors; ++i) sum += weight[i];
            *norm = RowNorm{survivors ? top : NEG_INF, 0, sum};
        }
    }
    __syncthreads();
    const int len = survivors;
    if (len < 0) return -1;
    // Warp w draws samples w, w + 32, …: the best pack(y + g, token) over the survivors.
    const u32 lane = threadIdx.x & 31;
    for (u32 s = threadIdx.x / 32; s < samples; s += blockDim.x / 32) {
        u64 best = 0;
        if (row.greedy) {
            best = len ? set[0] : 0;
        } else {
            for (int i = lane; i < len; i += 32) {
                const u32 token = key_token(set[i]);
                const u32 word = word_of(noise_words(row, s, token), token);
                const u64 c = pack(__fadd_rn(unpack_score(set[i]), gumbel_from_word(word)), token);
                best = c > best ? c : best;
            }
            best = warp_max_u64(best);
        }
        if (lane == 0) cands[s] = best;
    }
    return len;
}

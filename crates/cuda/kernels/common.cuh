// Shared by every kernel file (crates/cuda/src/kernels.rs concatenates them for NVRTC, this one
// first): row parameters, element loads, Philox noise, candidate packing. No headers, so bf16/f16
// are converted by hand.
// Precise math only (no fast-math): fast logs bias the tail of the noise.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned short u16;

#define NEG_INF __int_as_float(0xFF800000)

// Per-row parameters as callers store them in device memory: `fs_row_params` of flashsampling.h,
// `RowArgs` in src/launch.rs (24 bytes). Temperature 0 is greedy.
struct RowParams {
    float temperature;
    u32 reserved;
    u64 seed;
    u64 offset;
};

// What the kernels use: 1/T computed once per row, by the same IEEE division as the core's f32.
struct Row {
    u64 seed;
    u64 offset;
    float inv_t;
    bool greedy;
};

__device__ __forceinline__ Row row_of(const RowParams& p) {
    Row r;
    r.seed = p.seed;
    r.offset = p.offset;
    r.greedy = p.temperature == 0.0f;
    r.inv_t = r.greedy ? 1.0f : __fdiv_rn(1.0f, p.temperature);
    return r;
}

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

__device__ __forceinline__ float uniform_of(u32 word) {
    const float w = __fmul_rn(__fadd_rn(__uint2float_rn(word), 0.5f), 2.3283064365386963e-10f);
    return fminf(w, 1.0f - 5.9604644775390625e-08f);
}

__device__ __forceinline__ float gumbel_from_uniform(float w) {
    float e = -log1pf(-w);
    return -logf(e);
}

__device__ __forceinline__ float gumbel_from_word(u32 word) { return gumbel_from_uniform(uniform_of(word)); }

// The uniforms above which a token of scaled logit `y` cannot reach the score `to_beat`: its noise
// would have to be at least τ = to_beat − y, which needs w ≤ 1 − exp(−e^(−τ)) ≤ e^(−τ). τ is lowered
// by far more than the roundings of the score and the logarithms' 2 ulp, the bound raised by far
// more than __expf's error. A NaN or −inf `to_beat` (nothing found yet) sets no limit.
__device__ __forceinline__ float uniform_limit(float to_beat, float y) {
    const float tau = (to_beat - y) - (1e-4f + 1e-6f * (fabsf(to_beat) + fabsf(y)));
    return __expf(-tau) * 1.001f;
}

// The four noise words of token group `t >> 2` for (row, sample).
__device__ __forceinline__ uint4 noise_words(const Row& r, u32 sample, u32 t) {
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

// The largest candidate of the warp's lanes, in every lane.
__device__ __forceinline__ u64 warp_max_u64(u64 v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const u64 other = __shfl_xor_sync(0xFFFFFFFFu, v, o);
        v = other > v ? other : v;
    }
    return v;
}

// The score (or, for select.cu's keys, the scaled logit) a packed candidate holds; NaN for the
// empty candidate 0.
__device__ __forceinline__ float unpack_score(u64 c) {
    const u32 ord = (u32)(c >> 32);
    return __uint_as_float((ord & 0x80000000u) ? (ord & 0x7FFFFFFFu) : ~ord);
}

// The candidate of global token `t` with logit `x` and noise word `word` (unused by greedy rows).
// A token that cannot reach `to_beat` (the score of a candidate already found) skips the
// logarithms (uniform_limit) and gives 0; a −inf logit scores −inf whatever the noise.
__device__ __forceinline__ u64 candidate_of(float x, u32 t, u32 word, const Row& r, float to_beat) {
    if (!r.greedy && x != NEG_INF) {
        const float y = __fmul_rn(x, r.inv_t), w = uniform_of(word);
        if (w > uniform_limit(to_beat, y)) return 0;
        x = __fadd_rn(y, gumbel_from_uniform(w));
    }
    return pack(x, t);
}

// Best candidate of one (row, sample) over `count` logits `logits[i * stride]` of global tokens
// `first + i`, one Philox evaluation per group of four tokens; 0 when every token was left out.
__device__ __forceinline__ u64 best_over(const float* logits, int stride, int count, u32 first, const Row& r,
                                         u32 sample, float to_beat = NEG_INF) {
    u64 best = 0;
    uint4 words = make_uint4(0, 0, 0, 0);
    u32 group = 0xFFFFFFFFu;
    for (int i = 0; i < count; ++i) {
        const u32 t = first + (u32)i;
        const float x = logits[i * stride];
        if (!r.greedy && x != NEG_INF && (t >> 2) != group) {
            group = t >> 2;
            words = noise_words(r, sample, t);
        }
        const u64 c = candidate_of(x, t, word_of(words, t), r, to_beat);
        best = c > best ? c : best;
    }
    return best;
}

// best_over of the four tokens `first` … `first + 3` (first a multiple of 4: one group of noise
// words) whose logits are `x`, rejecting cheaply first what candidate_of would leave out. When no
// token can reach `to_beat` the result is 0 instead of a losing candidate: the same for a caller
// that folds it into a maximum already at least `to_beat`.
// - A greedy row's tokens need a logit of at least `to_beat`; a group of −inf logits scores −inf.
// - A sampled token needs w ≤ uniform_limit(to_beat, y), which grows with y: if even the smallest
//   uniform a word can give is above the limit at the largest y, no Philox is needed; if the
//   smallest of the four uniforms is above it, no token passes.
// A NaN logit (fmaxf would hide it) or a NaN or −inf `to_beat` (the limit is then NaN or +inf) goes
// to candidate_of token by token.
__device__ __forceinline__ u64 best_of_four(float4 x, u32 first, const Row& r, u32 sample, float to_beat) {
    const bool has_nan = isnan(x.x) || isnan(x.y) || isnan(x.z) || isnan(x.w);
    const float x_max = fmaxf(fmaxf(x.x, x.y), fmaxf(x.z, x.w));
    if (!has_nan && x_max < to_beat && (r.greedy || x_max == NEG_INF)) return 0;
    uint4 words = make_uint4(0, 0, 0, 0);
    if (!r.greedy) {
        // With inv_t ≥ 0 the largest y is the largest x's.
        const bool bounded = !has_nan && r.inv_t >= 0.0f;
        const float limit = uniform_limit(to_beat, __fmul_rn(x_max, r.inv_t));
        if (bounded && uniform_of(0) > limit) return 0;
        words = noise_words(r, sample, first);
        if (bounded && uniform_of(min(min(words.x, words.y), min(words.z, words.w))) > limit) return 0;
    }
    const u64 a = max(candidate_of(x.x, first, words.x, r, to_beat), candidate_of(x.y, first + 1, words.y, r, to_beat));
    const u64 b = max(candidate_of(x.z, first + 2, words.z, r, to_beat), candidate_of(x.w, first + 3, words.w, r, to_beat));
    return max(a, b);
}


// ---- per-row constraints and log-normaliser partials (DESIGN.md §3.3, §3.7) ----------------------
//
// The `_ex` variants of the fused kernels take these; the plain variants never see them. A NULL
// table means "none": no mask, no adjusted tokens, no log-normaliser asked for.

#define NO_MASK 0xFFFFFFFFu

struct ListHead;

// `Extras` in src/launch.rs (104 bytes).
struct Extras {
    const u32* mask;          // the rows' bitmasks, concatenated: bit t % 32 of word t / 32, set = allowed
    const u32* mask_start;    // per row: its first word in `mask`, NO_MASK when it has none
    const u32* adjust_start;  // per row and one more: its entries are [adjust_start[b], adjust_start[b + 1])
    const u32* adjust_token;  // global tokens, increasing within a row
    const float* adjust_coef; // three per entry: scale of positive logits, scale of the rest, added
    float2* norms;            // [row][slot]: (max y, Σ exp(y − max y)) of each block's tokens
    float* scaled;            // [scaled_row[b]][token of the shard]: y of the rows that rank their tokens
    const u32* scaled_row;    // per row: its ranking row (in `scaled` or `lists`), NO_MASK when it ranks nothing
    u64* lists;               // instead of `scaled`: [ranking row][slot][LIST_SLOTS] keys (tile_lists.cuh)
    ListHead* heads;          // [ranking row][slot]: what each list holds
    u32 norm_slots;           // slots per row of `norms`, and of `lists`, `heads` and `tops`
    u32 list_keep;            // the most keys a ranking row keeps (≤ LIST_KEEP_MAX)
    u32* tops;                // with `lists`: [ranking row][slot], the board of the lists' tops, zero between launches
    u32 lists_draw;           // with `lists`, 1: every ranking row truncates, and the selection draws its samples
};

// l̃ of `count` logits `l[i · stride]` of global tokens `first + i`, in place: `RowTransform::apply`
// of the core, with the same roundings (multiply, then add; then the mask).
__device__ __forceinline__ void constrain(float* l, int stride, int count, u32 first, u32 row, const Extras& ex) {
    if (ex.adjust_start) {
        u32 lo = ex.adjust_start[row], hi = ex.adjust_start[row + 1];
        const u32 end = hi;
        while (lo < hi) {
            const u32 mid = (lo + hi) / 2;
            if (ex.adjust_token[mid] < first) lo = mid + 1; else hi = mid;
        }
        for (u32 e = lo; e < end && ex.adjust_token[e] < first + (u32)count; ++e) {
            float& x = l[(ex.adjust_token[e] - first) * stride];
            const float scale = x > 0.0f ? ex.adjust_coef[3 * e] : ex.adjust_coef[3 * e + 1];
            x = __fadd_rn(__fmul_rn(x, scale), ex.adjust_coef[3 * e + 2]);
        }
    }
    if (ex.mask_start && ex.mask_start[row] != NO_MASK) {
        const u32* mask = ex.mask + ex.mask_start[row];
        for (int i = 0; i < count; ++i) {
            const u32 t = first + (u32)i;
            if (((mask[t / 32] >> (t % 32)) & 1u) == 0) l[i * stride] = NEG_INF;
        }
    }
}

// Writes y = l · inv_t of `count` logits `l[i · stride]` (tokens `tok + i` of the shard) where row
// `row` ranks its tokens into `scaled` (when the launch has no lists).
__device__ __forceinline__ void write_scaled(const float* l, int stride, int count, u32 tok, u32 row, u32 v_rows,
                                             float inv_t, const Extras& ex) {
    if (!ex.scaled || ex.scaled_row[row] == NO_MASK) return;
    float* y = ex.scaled + (size_t)ex.scaled_row[row] * v_rows + tok;
    // Four tokens in one 16-byte store where they are aligned (every row when V is a multiple of 4).
    if (count == 4 && ((size_t)y & 15) == 0) {
        *reinterpret_cast<float4*>(y) = make_float4(__fmul_rn(l[0], inv_t), __fmul_rn(l[stride], inv_t),
                                                    __fmul_rn(l[2 * stride], inv_t), __fmul_rn(l[3 * stride], inv_t));
        return;
    }
    for (int i = 0; i < count; ++i) y[i] = __fmul_rn(l[i * stride], inv_t);
}

// The log-normaliser partial of `count` values `y[i · stride]`: (max, Σ exp(y − max)); (-inf, 0)
// when there are none or all are -inf.
__device__ __forceinline__ float2 lse_of(const float* y, int stride, int count, float inv_t) {
    float m = NEG_INF;
    for (int i = 0; i < count; ++i) m = fmaxf(m, __fmul_rn(y[i * stride], inv_t));
    float s = 0.0f;
    if (m != NEG_INF) {
        for (int i = 0; i < count; ++i) s += expf(__fmul_rn(y[i * stride], inv_t) - m);
    }
    return make_float2(m, s);
}

// e^x for the log-normaliser sums: one multiply and one ex2.approx, results below 2^-126 flushed
// to 0 (terms that small do not change an f32 sum whose largest term is 1). Within 1e-6 of f64's
// sums, a tenth of the tests' tolerance.
__device__ __forceinline__ float exp_for_sum(float x) {
    float e;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(x * 1.4426950408889634f));
    return e;
}

// The partial of `count` values y = `l[i] · inv_t` against a maximum of at least `at_least`:
// (m, Σ exp(y − m)) with m the larger of `at_least` and the values' maximum, so that merging it
// into a partial whose maximum is `at_least` needs no exponential for this side; (-inf, 0) when m
// is -inf. A NaN value makes the sum NaN, as in lse_of.
__device__ __forceinline__ float2 lse_above(float at_least, const float* l, int count, float inv_t) {
    float y[4], m = at_least;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        y[i] = i < count ? __fmul_rn(l[i], inv_t) : NEG_INF;
        m = fmaxf(m, y[i]);
    }
    if (m == NEG_INF) return make_float2(NEG_INF, 0.0f);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) s += exp_for_sum(y[i] - m);
    return make_float2(m, s);
}

// lse_above's maximum alone, with a sum of 0: the partial of a row whose sums nobody reads, kept
// for its maximum.
__device__ __forceinline__ float2 max_above(float at_least, const float* l, int count, float inv_t) {
    float m = at_least;
#pragma unroll
    for (int i = 0; i < 4; ++i) m = fmaxf(m, i < count ? __fmul_rn(l[i], inv_t) : NEG_INF);
    return make_float2(m, 0.0f);
}

// A row's per-block slots (`row_slots`, `slots` of them: log-normaliser partials, list heads) past
// the grid hold no block's tokens: block 0 of the launch writes `empty` there, so that the merge
// needs no clearing first. `threads` threads share the work from thread `t`.
template <typename T>
__device__ __forceinline__ void empty_slots_past_grid(T* row_slots, u32 slots, T empty, u32 t, u32 threads) {
    for (u32 s = gridDim.x + t; blockIdx.x == 0 && s < slots; s += threads) row_slots[s] = empty;
}

// A partial's sum against the maximum `m` of a merge; exp(0) = 1 exactly: the partial holding the
// maximum needs no exponential.
__device__ __forceinline__ float lse_scaled(float2 a, float m) {
    return a.y == 0.0f ? 0.0f : a.x == m ? a.y : a.y * exp_for_sum(a.x - m);
}

// Combines two partials (`LogSumExp::merge` of the core, in f32).
__device__ __forceinline__ float2 lse_merge(float2 a, float2 b) {
    const float m = fmaxf(a.x, b.x);
    if (m == NEG_INF) return make_float2(NEG_INF, 0.0f);
    return make_float2(m, lse_scaled(a, m) + lse_scaled(b, m));
}

// Combines three partials at once, summed in the order a, b, c: their exponentials do not wait for
// each other, as a merge of a merge's would.
__device__ __forceinline__ float2 lse_merge3(float2 a, float2 b, float2 c) {
    const float m = fmaxf(fmaxf(a.x, b.x), c.x);
    if (m == NEG_INF) return make_float2(NEG_INF, 0.0f);
    return make_float2(m, lse_scaled(a, m) + lse_scaled(b, m) + lse_scaled(c, m));
}

// ---- wgmma (sm_90a): the warpgroup tensor-core instructions of fused_mma.cu's wide variants -----
//
// A warpgroup (four consecutive warps) issues each instruction together. A and B both come from
// shared memory through descriptors, K-major with the 128-byte swizzle: rows of 64 elements (128
// bytes) whose 16-byte pieces are XOR-ed with the row's low 3 bits, in atoms of 8 rows (1024 bytes,
// 1024-byte aligned) — the layout fused_mma.cu's `swizzled` writes. D stays in registers: for each
// 8 columns, warp w of the group holds rows 16w + g and 16w + g + 8, columns 2t and 2t + 1 (g =
// lane / 4, t = lane % 4), the m16n8 accumulator layout. The instructions run asynchronously:
// fence before, wait before anything reads D or refills the shared memory they read.

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WGMMA_AVAILABLE 1
#else
#define WGMMA_AVAILABLE 0
#endif

// A shared-memory descriptor of a K-major, 128-byte-swizzled operand starting at `shared_addr`:
// 1024 bytes between atoms of 8 rows; the leading offset is unused for this layout.
__device__ __forceinline__ u64 swizzled_operand(u32 shared_addr) {
    return (u64)((shared_addr & 0x3FFFF) >> 4) | ((u64)1 << 16) | ((u64)(1024 >> 4) << 32) | ((u64)1 << 62);
}

// Keeps the compiler from moving accesses to D across the asynchronous instructions.
template <int NT>
__device__ __forceinline__ void wgmma_hold(float (&d)[NT][4]) {
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(d[n][i])::"memory");
}

// Before the first instruction of a batch: the registers of D (held) are ready.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }

// After the last instruction of a batch: commit them as one group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }

// Wait until at most N committed groups are still running (then hold D).
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

template <typename E>
struct WgmmaType;
template <>
struct WgmmaType<Bf16> {
    static constexpr bool BF16 = true;
};
template <>
struct WgmmaType<F16> {
    static constexpr bool BF16 = false;
};

// D += A · B for one m64nNk16 step, A and B from descriptors (K-major both: trans-a = trans-b = 0).
#define WGMMA_D4(i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
#define WGMMA_TEXT(SHAPE, TYPE, D, A, B)                                                         \
    "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\nwgmma.mma_async.sync.aligned." SHAPE ".f32." TYPE "." TYPE \
    " {" D "}, " A ", " B ", p, 1, 1, 0, 0;\n}"
#define WGMMA_ISSUE(E, SHAPE, D, A, B, ...)                                                  \
    if constexpr (WgmmaType<E>::BF16) {                                                    \
        asm volatile(WGMMA_TEXT(SHAPE, "bf16", D, A, B) : __VA_ARGS__ : "l"(a), "l"(b));   \
    } else {                                                                              \
        asm volatile(WGMMA_TEXT(SHAPE, "f16", D, A, B) : __VA_ARGS__ : "l"(a), "l"(b));    \
    }

// One instruction per width: NT blocks of 8 columns.
template <int NT>
struct Wgmma;
template <>
struct Wgmma<4> {
    template <typename E>
    static __device__ __forceinline__ void run(float (&d)[4][4], u64 a, u64 b) {
        WGMMA_ISSUE(E, "m64n32k16", "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15", "%16", "%17", WGMMA_D4(0), WGMMA_D4(1), WGMMA_D4(2), WGMMA_D4(3));
    }
};
template <>
struct Wgmma<8> {
    template <typename E>
    static __device__ __forceinline__ void run(float (&d)[8][4], u64 a, u64 b) {
        WGMMA_ISSUE(E, "m64n64k16", "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31", "%32", "%33", WGMMA_D4(0), WGMMA_D4(1), WGMMA_D4(2), WGMMA_D4(3), WGMMA_D4(4), WGMMA_D4(5), WGMMA_D4(6), WGMMA_D4(7));
    }
};
template <>
struct Wgmma<16> {
    template <typename E>
    static __device__ __forceinline__ void run(float (&d)[16][4], u64 a, u64 b) {
        WGMMA_ISSUE(E, "m64n128k16", "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63", "%64", "%65", WGMMA_D4(0), WGMMA_D4(1), WGMMA_D4(2), WGMMA_D4(3), WGMMA_D4(4), WGMMA_D4(5), WGMMA_D4(6), WGMMA_D4(7), WGMMA_D4(8), WGMMA_D4(9), WGMMA_D4(10), WGMMA_D4(11), WGMMA_D4(12), WGMMA_D4(13), WGMMA_D4(14), WGMMA_D4(15));
    }
};
template <>
struct Wgmma<32> {
    template <typename E>
    static __device__ __forceinline__ void run(float (&d)[32][4], u64 a, u64 b) {
        WGMMA_ISSUE(E, "m64n256k16", "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127", "%128", "%129", WGMMA_D4(0), WGMMA_D4(1), WGMMA_D4(2), WGMMA_D4(3), WGMMA_D4(4), WGMMA_D4(5), WGMMA_D4(6), WGMMA_D4(7), WGMMA_D4(8), WGMMA_D4(9), WGMMA_D4(10), WGMMA_D4(11), WGMMA_D4(12), WGMMA_D4(13), WGMMA_D4(14), WGMMA_D4(15), WGMMA_D4(16), WGMMA_D4(17), WGMMA_D4(18), WGMMA_D4(19), WGMMA_D4(20), WGMMA_D4(21), WGMMA_D4(22), WGMMA_D4(23), WGMMA_D4(24), WGMMA_D4(25), WGMMA_D4(26), WGMMA_D4(27), WGMMA_D4(28), WGMMA_D4(29), WGMMA_D4(30), WGMMA_D4(31));
    }
};

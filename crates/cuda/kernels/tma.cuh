// ---- TMA copies into shared memory and their mbarriers (sm_90a) ----------------------------------
//
// A tensor map (encoded on the host: src/launch.rs) describes a 2-D array in global memory and the
// box one copy moves; `cp.async.bulk.tensor` copies a box into shared memory with the 128-byte
// swizzle the stages use, zero-filling what lies outside the array, and counts its bytes on an
// mbarrier of the block. Waiting on that barrier's phase makes the box visible to the thread.

// `CUtensorMap`: 128 opaque bytes, passed by value as a kernel parameter (the kernels that use no
// TMA take it too, zeroed: one parameter list for every tensor-core entry point).
struct __align__(64) TensorMap {
    u64 opaque[16];
};

#if WGMMA_AVAILABLE

// Makes barriers initialised by this thread visible to the asynchronous proxy (the copies).
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }

// Arrives once on `bar` and expects `bytes` more of copies in this phase.
__device__ __forceinline__ void mbar_expect_bytes(u64* bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"((u32)__cvta_generic_to_shared(bar)),
                 "r"(bytes)
                 : "memory");
}

// The box of `map` at element `x` of row `y` into `dst`, its bytes counted on `bar`.
__device__ __forceinline__ void tma_load(void* dst, const TensorMap& map, u32 x, u32 y, u64* bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
            (u32)__cvta_generic_to_shared(dst)),
        "l"(&map), "r"(x), "r"(y), "r"((u32)__cvta_generic_to_shared(bar))
        : "memory");
}

#endif

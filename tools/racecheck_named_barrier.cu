// compute-sanitizer racecheck and named barriers: a reproducer.
//
// A correct hand-over through shared memory between two groups of warps, ordered by two
// __syncthreads, as fused_mma.cu's step buffer is. With `named` = 1 the first group also meets on
// named barrier 1 among itself (fused_mma.cu's ring barrier); nothing else changes. racecheck
// (CUDA 13.0, H100) reports the program clean with 0 and a hazard on `buf` with 1, while the
// result is right either way: its hazards on fused_mma.cu's step buffer are of this kind.
//
//     nvcc -arch=native -o /tmp/race tools/racecheck_named_barrier.cu
//     compute-sanitizer --tool racecheck /tmp/race 0; compute-sanitizer --tool racecheck /tmp/race 1
#include <cstdio>
#include <cstdlib>

__global__ void handover(int* out, int named) {
    __shared__ int buf[64];
    const int warp = threadIdx.x / 32;
    for (int it = 0; it < 3; ++it) {
        if (warp < 2 && named) {
            for (int j = 0; j <= it; ++j) asm volatile("bar.sync 1, 64;" ::: "memory");
        }
        __syncthreads();
        if (warp < 2) buf[threadIdx.x] = it + 1;
        __syncthreads();
        if (warp >= 2) out[threadIdx.x] += buf[threadIdx.x - 64];
    }
}

int main(int argc, char** argv) {
    const int named = argc > 1 ? atoi(argv[1]) : 1;
    int* d = nullptr;
    cudaMalloc(&d, 128 * sizeof(int));
    cudaMemset(d, 0, 128 * sizeof(int));
    handover<<<1, 128>>>(d, named);
    int h[128];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    const bool ok = h[64] == 6 && h[127] == 6;
    printf("named barrier %d: %s\n", named, ok ? "result right" : "result WRONG");
    return ok ? 0 : 1;
}

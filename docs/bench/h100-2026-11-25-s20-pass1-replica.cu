// CUDA replica of shaders/sample.wgsl's pass-1 matmul (bf16, batch tile BT), to see with ncu why the
// WGSL pass runs its FMAs at half rate. Diagnostic only (twentieth session, docs/PERFORMANCE.md):
//   nvcc -O3 -arch=sm_90a -DLANES=8 -DBT=16 [-DHB] [-DUNIF] [-DNOSUM] [-DSLOTS] [-DMINB=4] -o rep replica.cu
//   ./rep D V B
// HB: hidden rows staged as bf16 pairs; UNIF: every lane reads the same staged address (wrong sums,
// for the shared-memory cost); NOSUM: no lane sums (wrong sums); SLOTS: lane sums in 3 rounds;
// MINB: minimum blocks per SM (runs 2–3 were built before MINB existed: __launch_bounds__(THREADS)).
#ifndef __CUDACC_RTC__
#include <cstdio>
#include <cstdint>
#include <vector>
#include <cuda_runtime.h>
#else
typedef unsigned int uint32_t; typedef unsigned short uint16_t;
#endif
#ifndef LANES
#define LANES 8
#endif
#ifndef BT
#define BT 16
#endif
#define THREADS (16 * LANES)
#define ROWS 4
#define TILE 64
#define STAGE_FLOATS 2048
#define PER_WORD4 8
#define STEP_ELEMS (LANES * PER_WORD4)
#ifdef HB
#define HPACK 2
#else
#define HPACK 1
#endif
#define CHUNK_STEPS ((STAGE_FLOATS * HPACK / BT / STEP_ELEMS) > 0 ? (STAGE_FLOATS * HPACK / BT / STEP_ELEMS) : 1)
#define CHUNK (CHUNK_STEPS * STEP_ELEMS)
#define CHUNK4 (CHUNK / 4 / HPACK)
#define UNROLL (CHUNK_STEPS < 2 ? CHUNK_STEPS : 2)

__device__ __forceinline__ int staged_index(int c) {
  int v = c % (2 * LANES);
  return c - v + (v % 2) * LANES + v / 2;
}

#ifndef MINB
#define MINB 1
#endif
__global__ void __launch_bounds__(THREADS, MINB) pass1(const uint4* __restrict__ W, const float4* __restrict__ H,
    float* __restrict__ out, int rows_total, int words_per_row, int steps, int hidden_stride, int batch_tiles) {
  __shared__ float4 stage[STAGE_FLOATS / 4];
  __shared__ float logits[TILE * BT];
  int n = blockIdx.x;
  int tile = n / batch_tiles;
  int lid = threadIdx.x, lane = lid % LANES, rg = lid / LANES;
  int first = tile * TILE;
  int tile_rows = min(TILE, rows_total - first);
  int first_hidden = (n % batch_tiles) * BT;
  int row_starts[ROWS];
  for (int i = 0; i < ROWS; i++) row_starts[i] = (first + min(rg * ROWS + i, tile_rows - 1)) * words_per_row;
  float4 acc[BT];
  for (int r = 0; r < BT; r++) acc[r] = make_float4(0, 0, 0, 0);
  for (int s = 0; s < steps; s += UNROLL) {
    uint4 w[UNROLL][ROWS];
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
      int k = (s + u) * LANES + lane;
#pragma unroll
      for (int i = 0; i < ROWS; i++) w[u][i] = k < words_per_row ? W[row_starts[i] + k] : make_uint4(0, 0, 0, 0);
    }
    if (s % CHUNK_STEPS == 0) {
      __syncthreads();
      int chunk = s / CHUNK_STEPS;
      for (int q = lid; q < BT * CHUNK4; q += THREADS) {
        int r = q / CHUNK4, c = q % CHUNK4;
#ifdef HB
        stage[r * CHUNK4 + c] = H[((first_hidden + r) * hidden_stride + chunk * CHUNK) / 8 + c];
#else
        stage[r * CHUNK4 + staged_index(c)] = H[((first_hidden + r) * hidden_stride + chunk * CHUNK) / 4 + c];
#endif
      }
      __syncthreads();
    }
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
      float4 col[8];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        uint32_t a = ((uint32_t*)&w[u][0])[j], b = ((uint32_t*)&w[u][1])[j], c = ((uint32_t*)&w[u][2])[j], d = ((uint32_t*)&w[u][3])[j];
        col[2 * j] = make_float4(__uint_as_float(a << 16), __uint_as_float(b << 16), __uint_as_float(c << 16), __uint_as_float(d << 16));
        col[2 * j + 1] = make_float4(__uint_as_float(a & 0xFFFF0000u), __uint_as_float(b & 0xFFFF0000u), __uint_as_float(c & 0xFFFF0000u), __uint_as_float(d & 0xFFFF0000u));
      }
      int step_in_chunk = (s + u) % CHUNK_STEPS;
#pragma unroll
      for (int r = 0; r < BT; r++) {
#ifdef UNIF
        int at = r * CHUNK4 + step_in_chunk * (STEP_ELEMS / 4 / HPACK);
#else
        int at = r * CHUNK4 + step_in_chunk * (STEP_ELEMS / 4 / HPACK) + lane;
#endif
        float4 sum = acc[r];
#ifdef HB
        {
          uint4 hw = *(const uint4*)&stage[at];
          const uint32_t hu[4] = {hw.x, hw.y, hw.z, hw.w};
#pragma unroll
          for (int e2 = 0; e2 < 4; e2++) {
            float hv0 = __uint_as_float(hu[e2] << 16), hv1 = __uint_as_float(hu[e2] & 0xFFFF0000u);
            float4 c0 = col[2 * e2], c1 = col[2 * e2 + 1];
            sum.x = fmaf(c0.x, hv0, sum.x); sum.y = fmaf(c0.y, hv0, sum.y); sum.z = fmaf(c0.z, hv0, sum.z); sum.w = fmaf(c0.w, hv0, sum.w);
            sum.x = fmaf(c1.x, hv1, sum.x); sum.y = fmaf(c1.y, hv1, sum.y); sum.z = fmaf(c1.z, hv1, sum.z); sum.w = fmaf(c1.w, hv1, sum.w);
          }
        }
#else
#pragma unroll
        for (int half = 0; half < 2; half++) {
          float4 h = stage[at + half * LANES];
          const float hv[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
          for (int e = 0; e < 4; e++) {
            float4 c = col[4 * half + e];
            sum.x = fmaf(c.x, hv[e], sum.x); sum.y = fmaf(c.y, hv[e], sum.y);
            sum.z = fmaf(c.z, hv[e], sum.z); sum.w = fmaf(c.w, hv[e], sum.w);
          }
        }
#endif
        acc[r] = sum;
      }
    }
  }
#ifdef SLOTS
  // Lanes [k, k + NSLOT) add into NSLOT slots (logits, then stage) in round k.
  const int SLOT = BT * TILE;
  const int NSLOT = LANES < 1 + STAGE_FLOATS / SLOT ? LANES : 1 + STAGE_FLOATS / SLOT;
  float* stagef = (float*)stage;
  for (int k = 0; k < LANES; k += NSLOT) {
    __syncthreads();
    if (lane >= k && lane < k + NSLOT) {
      int slot = lane - k;
#pragma unroll
      for (int r = 0; r < BT; r++) {
        int at = r * TILE + rg * ROWS;
        float4* p = slot == 0 ? (float4*)&logits[at] : (float4*)&stagef[(slot - 1) * SLOT + at];
        float4 old = k == 0 ? make_float4(0, 0, 0, 0) : *p;
        *p = make_float4(old.x + acc[r].x, old.y + acc[r].y, old.z + acc[r].z, old.w + acc[r].w);
      }
    }
  }
  __syncthreads();
  for (int o = lid; o < SLOT; o += THREADS) {
    float sum = logits[o];
    for (int slot = 1; slot < NSLOT; slot++) sum += stagef[(slot - 1) * SLOT + o];
    logits[o] = sum;
  }
#else
#ifdef NOSUM
  for (int l = 0; l < 1; l++) {
#else
  for (int l = 0; l < LANES; l++) {
#endif
    __syncthreads();
    if (lane == l) {
#pragma unroll
      for (int r = 0; r < BT; r++) {
        const float a[4] = {acc[r].x, acc[r].y, acc[r].z, acc[r].w};
#pragma unroll
        for (int i = 0; i < ROWS; i++) {
          int at = r * TILE + rg * ROWS + i;
          logits[at] = (l == 0 ? 0.f : logits[at]) + a[i];
        }
      }
    }
  }
  __syncthreads();
#endif
  // Greedy argmax per hidden row over the tile, one warp-free pass: thread r < BT scans its row.
  if (lid < BT) {
    float best = -1e30f; int bi = 0;
    for (int i = 0; i < tile_rows; i++) if (logits[lid * TILE + i] > best) { best = logits[lid * TILE + i]; bi = i; }
    out[(size_t)n * BT + lid] = best + bi * 1e-9f;
  }
}

#ifndef __CUDACC_RTC__
int main(int argc, char** argv) {
  int D = argc > 1 ? atoi(argv[1]) : 2048, V = argc > 2 ? atoi(argv[2]) : 151936, B = argc > 3 ? atoi(argv[3]) : 16;
  int words = D / 8, steps = (words + LANES - 1) / LANES;
  int stride = (steps + CHUNK_STEPS - 1) / CHUNK_STEPS * CHUNK;
  int batch_tiles = (B + BT - 1) / BT;
  int tiles = (V + TILE - 1) / TILE;
  uint4* W; float4* Hd; float* out;
  cudaMalloc(&W, (size_t)V * words * 16);
  cudaMalloc(&Hd, (size_t)batch_tiles * BT * stride * 4);
  cudaMalloc(&out, (size_t)tiles * batch_tiles * BT * 4);
  std::vector<uint16_t> hw((size_t)V * D);
  uint32_t x = 12345;
  for (auto& v : hw) { x = x * 1664525u + 1013904223u; v = 0x3c00 + ((x >> 16) & 0x3ff) - 0x200; }
  cudaMemcpy(W, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice);
  std::vector<float> hh((size_t)batch_tiles * BT * stride);
  for (auto& v : hh) { x = x * 1664525u + 1013904223u; v = ((x >> 8) & 0xffff) / 65536.f - 0.5f; }
  cudaMemcpy(Hd, hh.data(), hh.size() * 4, cudaMemcpyHostToDevice);
  cudaFuncAttributes attr; cudaFuncGetAttributes(&attr, pass1);
  int blocks_per_sm; cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, pass1, THREADS, 0);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 5; i++) pass1<<<tiles * batch_tiles, THREADS>>>(W, Hd, out, V, words, steps, stride, batch_tiles);
  cudaEventRecord(a);
  int iters = 50;
  for (int i = 0; i < iters; i++) pass1<<<tiles * batch_tiles, THREADS>>>(W, Hd, out, V, words, steps, stride, batch_tiles);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  double us = ms * 1000 / iters;
  double fma = (double)B * D * V;
  printf("LANES=%d BT=%d D=%d V=%d B=%d regs=%d blocks/SM=%d: %.1f us, %.2f TFMA/s, W %.0f GB/s (%s)\n", LANES, BT, D, V, B,
         attr.numRegs, blocks_per_sm, us, fma / us / 1e6, (double)V * D * 2 / us / 1e3, cudaGetErrorString(cudaGetLastError()));
}
#endif

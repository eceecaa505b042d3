// C++17 consumer of the CUDA device-pointer path, as an inference engine uses it: the program owns
// every device buffer (cudaMalloc) and its stream; the library borrows its LM head, enqueues on
// that stream, copies nothing and synchronises nothing. Checks the tokens against the CPU backend
// on the same data, a row with a bad temperature, and bad input. Needs a GPU and the CUDA runtime:
// tools/gpu-check.sh builds and runs it on the GPU machine. Exit codes as example.c (77: no CUDA).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "flashsampling.h"

static int failures = 0;

static void expect(const char *what, fs_status got, fs_status want) {
  if (got != want) {
    std::fprintf(stderr, "FAIL %s: status %d, expected %d (%s)\n", what, got, want, flashsampling_last_error());
    failures++;
  } else {
    std::printf("ok   %s\n", what);
  }
}

static void cuda_check(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "FAIL %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// float → bf16 bits, round to nearest even (finite inputs).
static uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// A device buffer the program owns.
template <typename T>
struct DeviceBuffer {
  T *ptr = nullptr;
  explicit DeviceBuffer(size_t n) { cuda_check(cudaMalloc(&ptr, n * sizeof(T)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
};

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("skip: no CUDA device\n");
    return 77;
  }
  constexpr size_t vocab = 5003, dim = 136, batch = 6;
  constexpr uint32_t samples = 4;
  // Fresh pseudo-random weights and hidden states (xorshift), never zeros.
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<float>((state >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
  };
  std::vector<uint16_t> w(vocab * dim), h(batch * dim);
  for (auto &x : w) x = to_bf16(next());
  for (auto &x : h) x = to_bf16(2.0f * next());
  // Rows 0 and 3 greedy, the others sampled; row 5 gets a NaN temperature later.
  std::vector<fs_row_params> rows;
  for (size_t b = 0; b < batch; b++) rows.push_back({b % 3 == 0 ? 0.0f : 0.8f, 1000 + b, 17});

  cudaStream_t stream;
  cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  DeviceBuffer<uint16_t> d_w(w.size()), d_h(h.size());
  DeviceBuffer<fs_row_params> d_rows(batch);
  DeviceBuffer<uint64_t> d_workspace(batch * samples);
  DeviceBuffer<uint32_t> d_tokens(batch * samples);
  DeviceBuffer<uint8_t> d_statuses(batch);
  cuda_check(cudaMemcpyAsync(d_w.ptr, w.data(), w.size() * 2, cudaMemcpyHostToDevice, stream), "upload W");
  cuda_check(cudaMemcpyAsync(d_h.ptr, h.data(), h.size() * 2, cudaMemcpyHostToDevice, stream), "upload H");
  cuda_check(cudaMemcpyAsync(d_rows.ptr, rows.data(), batch * sizeof(fs_row_params), cudaMemcpyHostToDevice, stream),
             "upload rows");
  cuda_check(cudaStreamSynchronize(stream), "sync");

  fs_context *ctx = nullptr;
  fs_status st = flashsampling_context_create(FS_BACKEND_CUDA, &ctx);
  if (st == FS_ERROR_UNAVAILABLE) {
    std::printf("skip: %s\n", flashsampling_last_error());
    return 77;
  }
  expect("CUDA context", st, FS_OK);
  if (st != FS_OK) return 1;
  fs_lm_head *head = nullptr;
  expect("borrow the program's device LM head",
         flashsampling_lm_head_borrow_cuda(ctx, d_w.ptr, FS_DTYPE_BF16, vocab, dim, 0, 0, &head), FS_OK);

  expect("sample on the program's stream",
         flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, d_workspace.ptr,
                                   d_tokens.ptr, d_statuses.ptr, stream),
         FS_OK);
  std::vector<uint32_t> tokens(batch * samples, 0xFFFFFFFFu);
  std::vector<uint8_t> statuses(batch, 0xFF);
  cuda_check(cudaMemcpyAsync(tokens.data(), d_tokens.ptr, tokens.size() * 4, cudaMemcpyDeviceToHost, stream), "tokens");
  cuda_check(cudaMemcpyAsync(statuses.data(), d_statuses.ptr, batch, cudaMemcpyDeviceToHost, stream), "statuses");
  cuda_check(cudaStreamSynchronize(stream), "sync");

  // The same call on the CPU backend, host buffers: the same tokens (noise is a pure function of
  // seed, offset, sample and token; a near-tie between two scores could differ, none is expected).
  fs_context *cpu = nullptr;
  expect("CPU context", flashsampling_context_create(FS_BACKEND_CPU, &cpu), FS_OK);
  fs_lm_head *cpu_head = nullptr;
  expect("CPU head", flashsampling_lm_head_load(cpu, w.data(), w.size() * 2, FS_DTYPE_BF16, dim, 0, 0, &cpu_head), FS_OK);
  std::vector<uint32_t> want(batch * samples);
  std::vector<uint8_t> want_status(batch);
  expect("CPU sample", flashsampling_sample(cpu, cpu_head, h.data(), h.size() * 2, FS_DTYPE_BF16, batch, rows.data(),
                                            batch, samples, want.data(), want.size(), want_status.data(), batch),
         FS_OK);
  size_t same = 0;
  for (size_t i = 0; i < tokens.size(); i++) same += tokens[i] == want[i];
  std::printf("%zu of %zu tokens identical to the CPU backend\n", same, tokens.size());
  if (same != tokens.size()) failures++;
  for (size_t b = 0; b < batch; b++) {
    if (statuses[b] != FS_ROW_OK) {
      std::fprintf(stderr, "FAIL row %zu status %u\n", b, statuses[b]);
      failures++;
    }
  }

  // The call captured in a CUDA graph (it fails to capture if the library allocated, copied to
  // the host or synchronised), replayed after the rows advanced their offset in device memory:
  // the same tokens as a direct call with those rows.
  for (auto &r : rows) r.offset += 1;
  cuda_check(cudaMemcpyAsync(d_rows.ptr, rows.data(), batch * sizeof(fs_row_params), cudaMemcpyHostToDevice, stream),
             "advance offsets");
  expect("direct call at the next offset",
         flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, d_workspace.ptr,
                                   d_tokens.ptr, d_statuses.ptr, stream),
         FS_OK);
  std::vector<uint32_t> direct(batch * samples);
  cuda_check(cudaMemcpyAsync(direct.data(), d_tokens.ptr, direct.size() * 4, cudaMemcpyDeviceToHost, stream), "direct");
  cuda_check(cudaStreamSynchronize(stream), "sync");
  cuda_check(cudaMemsetAsync(d_tokens.ptr, 0xFF, direct.size() * 4, stream), "poison tokens");
  cudaGraph_t graph;
  cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  fs_status captured = flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples,
                                                 d_workspace.ptr, d_tokens.ptr, d_statuses.ptr, stream);
  cuda_check(cudaStreamEndCapture(stream, &graph), "end capture");
  expect("sample captured in a CUDA graph", captured, FS_OK);
  cudaGraphExec_t exec;
  cuda_check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  cuda_check(cudaGraphLaunch(exec, stream), "replay");
  std::vector<uint32_t> replayed(batch * samples);
  cuda_check(cudaMemcpyAsync(replayed.data(), d_tokens.ptr, replayed.size() * 4, cudaMemcpyDeviceToHost, stream),
             "replayed");
  cuda_check(cudaStreamSynchronize(stream), "sync");
  if (replayed != direct || direct == tokens) {
    std::fprintf(stderr, "FAIL graph replay differs from the direct call (or offsets changed nothing)\n");
    failures++;
  } else {
    std::printf("ok   graph replay = direct call; a new offset gave new tokens\n");
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);

  // A bad temperature in device memory: that row's status, tokens 0; the other rows unchanged.
  fs_row_params bad = {NAN, 1005, 17};
  cuda_check(cudaMemcpyAsync(d_rows.ptr + 5, &bad, sizeof bad, cudaMemcpyHostToDevice, stream), "bad row");
  expect("sample with a NaN temperature in device memory",
         flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, d_workspace.ptr,
                                   d_tokens.ptr, d_statuses.ptr, stream),
         FS_OK);
  cuda_check(cudaMemcpyAsync(tokens.data(), d_tokens.ptr, tokens.size() * 4, cudaMemcpyDeviceToHost, stream), "tokens");
  cuda_check(cudaMemcpyAsync(statuses.data(), d_statuses.ptr, batch, cudaMemcpyDeviceToHost, stream), "statuses");
  cuda_check(cudaStreamSynchronize(stream), "sync");
  if (statuses[5] != FS_ROW_INVALID_PARAMS || tokens[5 * samples] != 0 || statuses[4] != FS_ROW_OK ||
      tokens[4 * samples] != direct[4 * samples]) {
    std::fprintf(stderr, "FAIL bad-temperature row: status %u token %u\n", statuses[5], tokens[5 * samples]);
    failures++;
  } else {
    std::printf("ok   NaN temperature -> FS_ROW_INVALID_PARAMS, other rows unchanged\n");
  }

  // Bad input is refused before anything is enqueued.
  expect("NULL workspace", flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples,
                                                     nullptr, d_tokens.ptr, d_statuses.ptr, stream),
         FS_ERROR_SHAPE);
  expect("misaligned hidden", flashsampling_sample_cuda(ctx, head, d_h.ptr + 1, FS_DTYPE_BF16, batch, d_rows.ptr,
                                                        samples, d_workspace.ptr, d_tokens.ptr, d_statuses.ptr, stream),
         FS_ERROR_SHAPE);
  expect("unknown dtype", flashsampling_sample_cuda(ctx, head, d_h.ptr, 9, batch, d_rows.ptr, samples,
                                                    d_workspace.ptr, d_tokens.ptr, d_statuses.ptr, stream),
         FS_ERROR_PARAM);
  expect("zero samples", flashsampling_sample_cuda(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, 0,
                                                   d_workspace.ptr, d_tokens.ptr, d_statuses.ptr, stream),
         FS_ERROR_PARAM);
  expect("CPU head on the CUDA path", flashsampling_sample_cuda(ctx, cpu_head, d_h.ptr, FS_DTYPE_BF16, batch,
                                                                d_rows.ptr, samples, d_workspace.ptr, d_tokens.ptr,
                                                                d_statuses.ptr, stream),
         FS_ERROR_FOREIGN_HEAD);
  expect("CUDA path on a CPU context", flashsampling_sample_cuda(cpu, cpu_head, d_h.ptr, FS_DTYPE_BF16, batch,
                                                                 d_rows.ptr, samples, d_workspace.ptr, d_tokens.ptr,
                                                                 d_statuses.ptr, stream),
         FS_ERROR_UNSUPPORTED);

  // Destroying the borrowed head leaves the program's memory alone.
  expect("destroy the borrowed head", flashsampling_lm_head_destroy(head), FS_OK);
  uint16_t first = 0;
  cuda_check(cudaMemcpy(&first, d_w.ptr, 2, cudaMemcpyDeviceToHost), "W still readable");
  if (first != w[0]) failures++;
  flashsampling_lm_head_destroy(cpu_head);
  flashsampling_context_destroy(cpu);
  flashsampling_context_destroy(ctx);
  cuda_check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}

// C++17 consumer of the CUDA device-pointer path, as an inference engine uses it: the program owns
// every device buffer (cudaMalloc) and its stream; the library borrows its LM head, enqueues on
// that stream, copies nothing and synchronises nothing. Checks the tokens, and the logprobs, device
// grammar mask, token lists, truncation and top-N lists of flashsampling_sample_cuda_ex, against the
// CPU backend on the same data, a row with a bad temperature, and bad input. Needs a GPU and the
// CUDA runtime: tools/gpu-check.sh builds and runs it on the GPU machine. Exit codes as example.c
// (77: no CUDA).
#include <cuda_runtime.h>

#include <algorithm>
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

// The largest |a[i] - b[i]|.
// The largest |a - b|; values equal on both sides (NaN with NaN, -inf with -inf) count 0, a NaN or
// an infinity on one side only counts infinity.
static float max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); i++) {
    if (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) continue;
    const float d = std::fabs(a[i] - b[i]);
    worst = std::isfinite(d) ? std::fmax(worst, d) : INFINITY;
  }
  return worst;
}

// The top-N lists of one call: `n` tokens and logprobs per row, row-major.
struct TopLists {
  size_t n;
  std::vector<uint32_t> tokens;
  std::vector<float> logprobs;
  TopLists(size_t rows, size_t per_row) : n(per_row), tokens(rows * per_row), logprobs(rows * per_row) {}
};

// How many of row `b`'s slots are padding (logprob -inf).
static size_t padded(const TopLists &t, size_t b) {
  return static_cast<size_t>(std::count(t.logprobs.begin() + b * t.n, t.logprobs.begin() + (b + 1) * t.n, -INFINITY));
}

// Whether row `b` is a bad row's list: tokens 0, logprobs NaN.
static bool bad_list(const TopLists &t, size_t b) {
  bool bad = true;
  for (size_t i = b * t.n; i < (b + 1) * t.n; i++) bad = bad && t.tokens[i] == 0 && std::isnan(t.logprobs[i]);
  return bad;
}

// Whether the device's lists are the CPU's: tokens identical, logprobs within `tol` (NaN with NaN,
// -inf with -inf). Prints each differing slot (the first 20) with both sides; `worst` gets the
// largest logprob difference of the slots that agree.
static bool same_top(const char *what, const TopLists &dev, const TopLists &cpu, float tol, float &worst) {
  worst = 0.0f;
  int differing = 0;
  for (size_t i = 0; i < cpu.tokens.size(); i++) {
    const float a = dev.logprobs[i], b = cpu.logprobs[i];
    const bool equal = a == b || (std::isnan(a) && std::isnan(b));
    // NaN or infinite where only one side is NaN or -inf: never within `tol`.
    const float d = equal ? 0.0f : std::fabs(a - b);
    if (dev.tokens[i] == cpu.tokens[i] && d <= tol) {
      worst = std::fmax(worst, d);
      continue;
    }
    if (differing++ < 20) {
      std::fprintf(stderr, "  %s: row %zu slot %zu: device token %u logprob %.9g, CPU token %u logprob %.9g\n", what,
                   i / cpu.n, i % cpu.n, dev.tokens[i], a, cpu.tokens[i], b);
    }
  }
  if (differing > 20) std::fprintf(stderr, "  %s: %d differing slots in all\n", what, differing);
  return differing == 0;
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

  // flashsampling_sample_ex on the CUDA context (host buffers, the borrowed head): a grammar-style
  // mask, a bias, penalties, logprobs and log-normalisers, the same as on the CPU backend.
  uint32_t features = 0;
  expect("CUDA features", flashsampling_context_features(ctx, &features), FS_OK);
  if ((features & FS_FEATURE_CONSTRAINTS) == 0 || (features & FS_FEATURE_LOGPROBS) == 0) {
    std::fprintf(stderr, "FAIL CUDA features %u lack constraints or logprobs\n", features);
    failures++;
  }
  const size_t words = (vocab + 31) / 32;
  std::vector<uint32_t> mask(batch * words);
  for (auto &m : mask) m = static_cast<uint32_t>((next() + 0.5f) * 4294967040.0f) | 0x101u;
  std::vector<size_t> offsets = {0, 2, 2, 3, 3, 4, 4};
  std::vector<uint32_t> bias_tokens = {7, 4000, 42, 5002};
  std::vector<float> bias_values = {3.0f, -2.0f, 5.0f, 1.5f};
  std::vector<uint32_t> counts = {1, 2, 3, 1};
  std::vector<fs_penalty_params> penalties(batch, fs_penalty_params{1.3f, 0.2f, 0.1f});
  fs_sample_options opt = {};
  opt.mask = mask.data();
  opt.mask_len = mask.size();
  opt.bias = {offsets.data(), bias_tokens.data(), bias_values.data(), bias_tokens.size()};
  opt.penalty_counts = {offsets.data(), bias_tokens.data(), counts.data(), bias_tokens.size()};
  opt.penalties = penalties.data();
  opt.penalties_len = batch;
  struct Result {
    std::vector<uint32_t> tokens = std::vector<uint32_t>(batch * samples);
    std::vector<uint8_t> statuses = std::vector<uint8_t>(batch);
    std::vector<float> logprobs = std::vector<float>(batch * samples);
    std::vector<float> log_z = std::vector<float>(batch);
  };
  // sample_ex with `opt`, on `rp` (the program's rows unless given), with `top`'s lists when given.
  auto sample_ex = [&](fs_context *c, fs_lm_head *hd, Result &r, const fs_row_params *rp = nullptr,
                       TopLists *top = nullptr) {
    fs_sample_outputs out = {};
    out.tokens = r.tokens.data();
    out.tokens_len = r.tokens.size();
    out.statuses = r.statuses.data();
    out.statuses_len = batch;
    out.logprobs = r.logprobs.data();
    out.logprobs_len = r.logprobs.size();
    out.log_normalizer = r.log_z.data();
    out.log_normalizer_len = batch;
    if (top) {
      out.top_n = static_cast<uint32_t>(top->n);
      out.top_tokens = top->tokens.data();
      out.top_tokens_len = top->tokens.size();
      out.top_logprobs = top->logprobs.data();
      out.top_logprobs_len = top->logprobs.size();
    }
    return flashsampling_sample_ex(c, hd, h.data(), h.size() * 2, FS_DTYPE_BF16, batch, rp ? rp : rows.data(), batch,
                                   samples, &opt, &out);
  };
  Result on_gpu, on_cpu;
  expect("sample_ex with constraints and logprobs on CUDA", sample_ex(ctx, head, on_gpu), FS_OK);
  expect("the same on the CPU", sample_ex(cpu, cpu_head, on_cpu), FS_OK);
  const float worst_lp = max_abs_diff(on_gpu.logprobs, on_cpu.logprobs), worst_z = max_abs_diff(on_gpu.log_z, on_cpu.log_z);
  if (on_gpu.tokens != on_cpu.tokens || on_gpu.statuses != on_cpu.statuses || worst_lp > 1e-4f || worst_z > 1e-4f) {
    std::fprintf(stderr, "FAIL sample_ex on CUDA differs from the CPU: logprobs by %g, logZ by %g\n", worst_lp, worst_z);
    failures++;
  } else {
    std::printf("ok   sample_ex (mask, bias, penalties, logprobs) on CUDA = CPU: %zu tokens, logprobs within %.1e, "
                "logZ within %.1e\n", on_gpu.tokens.size(), worst_lp, worst_z);
  }

  // The device path with logprobs and log-normalisers, in a workspace sized by asking the library:
  // the values sample_ex gives on the CPU, also when the call is captured in a CUDA graph.
  cuda_check(cudaMemcpyAsync(d_rows.ptr, rows.data(), batch * sizeof(fs_row_params), cudaMemcpyHostToDevice, stream),
             "rows again");
  size_t ws_bytes = 0;
  expect("workspace bytes with logprobs",
         flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, nullptr, true, 0, &ws_bytes),
         FS_OK);
  DeviceBuffer<uint8_t> d_ws(ws_bytes);
  DeviceBuffer<float> d_logprobs(batch * samples), d_log_z(batch);
  const fs_cuda_outputs dev_out = {d_tokens.ptr, d_statuses.ptr, d_logprobs.ptr, d_log_z.ptr};
  // The call into a workspace (d_ws unless given) of `bytes` bytes.
  auto sample_dev = [&](size_t bytes, const fs_cuda_options *dev_opt = nullptr, void *ws = nullptr) {
    return flashsampling_sample_cuda_ex(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, dev_opt,
                                        ws ? ws : d_ws.ptr, bytes, &dev_out, stream);
  };
  auto download = [&](Result &r) {
    cuda_check(cudaMemcpyAsync(r.tokens.data(), d_tokens.ptr, r.tokens.size() * 4, cudaMemcpyDeviceToHost, stream), "t");
    cuda_check(cudaMemcpyAsync(r.statuses.data(), d_statuses.ptr, batch, cudaMemcpyDeviceToHost, stream), "s");
    cuda_check(cudaMemcpyAsync(r.logprobs.data(), d_logprobs.ptr, r.logprobs.size() * 4, cudaMemcpyDeviceToHost, stream),
               "logprobs");
    cuda_check(cudaMemcpyAsync(r.log_z.data(), d_log_z.ptr, batch * 4, cudaMemcpyDeviceToHost, stream), "logZ");
    cuda_check(cudaStreamSynchronize(stream), "sync");
  };
  expect("workspace one word short", sample_dev(ws_bytes - 8), FS_ERROR_SHAPE);
  expect("sample_cuda_ex with logprobs on the program's stream", sample_dev(ws_bytes), FS_OK);
  Result dev, dev_replayed, host;
  download(dev);
  opt = {};
  expect("sample_ex with logprobs on the CPU", sample_ex(cpu, cpu_head, host), FS_OK);
  const float dev_lp = max_abs_diff(dev.logprobs, host.logprobs), dev_z = max_abs_diff(dev.log_z, host.log_z);
  if (dev.tokens != host.tokens || dev.statuses != host.statuses || dev_lp > 1e-5f || dev_z > 1e-5f) {
    std::fprintf(stderr, "FAIL sample_cuda_ex differs from the CPU: logprobs by %g, logZ by %g\n", dev_lp, dev_z);
    failures++;
  } else {
    std::printf("ok   sample_cuda_ex logprobs within %.1e and logZ within %.1e of the CPU's\n", dev_lp, dev_z);
  }
  cuda_check(cudaMemsetAsync(d_logprobs.ptr, 0xFF, batch * samples * 4, stream), "poison logprobs");
  cudaGraph_t lp_graph;
  cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  const fs_status lp_captured = sample_dev(ws_bytes);
  cuda_check(cudaStreamEndCapture(stream, &lp_graph), "end capture");
  expect("sample_cuda_ex with logprobs captured in a CUDA graph", lp_captured, FS_OK);
  cudaGraphExec_t lp_exec;
  cuda_check(cudaGraphInstantiate(&lp_exec, lp_graph, 0), "instantiate");
  cuda_check(cudaGraphLaunch(lp_exec, stream), "replay");
  download(dev_replayed);
  if (dev_replayed.tokens != dev.tokens || dev_replayed.logprobs != dev.logprobs || dev_replayed.log_z != dev.log_z) {
    std::fprintf(stderr, "FAIL the replayed graph's logprobs differ from the direct call's\n");
    failures++;
  } else {
    std::printf("ok   graph replay of sample_cuda_ex = direct call, logprobs included\n");
  }
  cudaGraphExecDestroy(lp_exec);
  cudaGraphDestroy(lp_graph);

  // A grammar mask in device memory: the tokens, statuses and logprobs sample_ex gives on the CPU
  // with the same mask from the host; row 2 allows nothing.
  std::vector<uint32_t> grammar(batch * words);
  for (auto &m : grammar) m = static_cast<uint32_t>((next() + 0.5f) * 4294967040.0f) & 0x0F0F0F0Fu;
  std::fill(grammar.begin() + 2 * words, grammar.begin() + 3 * words, 0u);
  DeviceBuffer<uint32_t> d_grammar(grammar.size());
  cuda_check(cudaMemcpyAsync(d_grammar.ptr, grammar.data(), grammar.size() * 4, cudaMemcpyHostToDevice, stream),
             "grammar");
  const fs_cuda_options dev_opt = {d_grammar.ptr};
  size_t mask_ws_bytes = 0;
  expect("workspace bytes with a mask and logprobs",
         flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &dev_opt, true, 0,
                                            &mask_ws_bytes),
         FS_OK);
  expect("a mask in a workspace sized without one", sample_dev(ws_bytes, &dev_opt), FS_ERROR_SHAPE);
  DeviceBuffer<uint8_t> d_mask_ws(mask_ws_bytes);
  expect("sample_cuda_ex with a device mask and logprobs", sample_dev(mask_ws_bytes, &dev_opt, d_mask_ws.ptr), FS_OK);
  Result masked_dev, masked_host;
  download(masked_dev);
  opt = {};
  opt.mask = grammar.data();
  opt.mask_len = grammar.size();
  expect("sample_ex with the same mask on the CPU", sample_ex(cpu, cpu_head, masked_host), FS_OK);
  bool allowed = true;
  for (size_t b = 0; b < batch; b++)
    for (uint32_t j = 0; j < samples && b != 2; j++) {
      const uint32_t t = masked_dev.tokens[b * samples + j];
      allowed = allowed && ((grammar[b * words + t / 32] >> (t % 32)) & 1u);
    }
  const float mask_lp = max_abs_diff(masked_dev.logprobs, masked_host.logprobs);
  const float mask_z = max_abs_diff(masked_dev.log_z, masked_host.log_z);
  if (masked_dev.tokens != masked_host.tokens || masked_dev.statuses != masked_host.statuses || !allowed ||
      masked_dev.statuses[2] != FS_ROW_ALL_MASKED || !std::isnan(masked_dev.logprobs[2 * samples]) ||
      masked_dev.tokens == dev.tokens || mask_lp > 1e-5f || mask_z > 1e-5f) {
    std::fprintf(stderr, "FAIL sample_cuda_ex with a device mask differs from the CPU: logprobs by %g, logZ by %g\n",
                 mask_lp, mask_z);
    failures++;
  } else {
    std::printf("ok   sample_cuda_ex with a device mask = CPU with the host mask: every token allowed, row 2 "
                "FS_ROW_ALL_MASKED, logprobs within %.1e, logZ within %.1e\n", mask_lp, mask_z);
  }
  const fs_cuda_options misaligned_mask = {reinterpret_cast<const uint32_t *>(reinterpret_cast<uintptr_t>(d_grammar.ptr) + 2)};
  expect("misaligned device mask", sample_dev(mask_ws_bytes, &misaligned_mask, d_mask_ws.ptr), FS_ERROR_SHAPE);

  // Token lists in device memory — generation counts for the penalties and biases — with per-row
  // penalties: what sample_ex gives on the CPU with the same lists from the host. Row 3's tokens
  // decrease, which only the device path refuses (FS_ROW_INVALID_PARAMS); offsets that decrease
  // make every row invalid.
  const std::vector<uint32_t> l_off = {0, 3, 3, 5, 7, 8, 10};
  const std::vector<uint32_t> l_tok = {7, 42, 4000, 11, 5002, 900, 800, 17, 3, 4999};
  const std::vector<uint32_t> l_cnt = {1, 0, 2, 3, 1, 1, 1, 0, 2, 5};
  const std::vector<float> l_bias = {3.0f, -2.0f, 0.0f, 0.0f, 1.5f, 1.0f, 1.0f, 5.0f, -1.0f, 0.5f};
  std::vector<fs_penalty_params> l_pen(batch);
  for (size_t b = 0; b < batch; b++) l_pen[b] = {1.1f + 0.1f * b, 0.3f, 0.05f * b};
  DeviceBuffer<uint32_t> d_off(l_off.size()), d_tok(l_tok.size()), d_cnt(l_cnt.size());
  DeviceBuffer<float> d_bias(l_bias.size());
  DeviceBuffer<fs_penalty_params> d_pen(batch);
  cuda_check(cudaMemcpyAsync(d_off.ptr, l_off.data(), l_off.size() * 4, cudaMemcpyHostToDevice, stream), "offsets");
  cuda_check(cudaMemcpyAsync(d_tok.ptr, l_tok.data(), l_tok.size() * 4, cudaMemcpyHostToDevice, stream), "tokens");
  cuda_check(cudaMemcpyAsync(d_cnt.ptr, l_cnt.data(), l_cnt.size() * 4, cudaMemcpyHostToDevice, stream), "counts");
  cuda_check(cudaMemcpyAsync(d_bias.ptr, l_bias.data(), l_bias.size() * 4, cudaMemcpyHostToDevice, stream), "bias");
  cuda_check(cudaMemcpyAsync(d_pen.ptr, l_pen.data(), batch * sizeof(fs_penalty_params), cudaMemcpyHostToDevice, stream),
             "penalties");
  fs_cuda_options lists_opt = {};
  lists_opt.adjust_offsets = d_off.ptr;
  lists_opt.adjust_tokens = d_tok.ptr;
  lists_opt.adjust_counts = d_cnt.ptr;
  lists_opt.adjust_bias = d_bias.ptr;
  lists_opt.adjust_len = l_tok.size();
  lists_opt.penalties = d_pen.ptr;
  size_t lists_ws_bytes = 0;
  expect("workspace bytes with token lists and logprobs",
         flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &lists_opt, true, 0,
                                            &lists_ws_bytes),
         FS_OK);
  DeviceBuffer<uint8_t> d_lists_ws(lists_ws_bytes);
  auto sample_lists = [&](const fs_cuda_options *o) {
    return flashsampling_sample_cuda_ex(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, o,
                                        d_lists_ws.ptr, lists_ws_bytes, &dev_out, stream);
  };
  expect("sample_cuda_ex with token lists, penalties and logprobs", sample_lists(&lists_opt), FS_OK);
  Result lists_dev, lists_host;
  download(lists_dev);
  const std::vector<size_t> h_off(l_off.begin(), l_off.end());
  opt = {};
  opt.bias = {h_off.data(), l_tok.data(), l_bias.data(), l_tok.size()};
  opt.penalty_counts = {h_off.data(), l_tok.data(), l_cnt.data(), l_tok.size()};
  opt.penalties = l_pen.data();
  opt.penalties_len = batch;
  expect("sample_ex with the same lists on the CPU", sample_ex(cpu, cpu_head, lists_host), FS_OK);
  bool lists_match = lists_dev.statuses[3] == FS_ROW_INVALID_PARAMS && lists_dev.tokens[3 * samples] == 0 &&
                     std::isnan(lists_dev.logprobs[3 * samples]);
  float lists_lp = 0.0f;
  for (size_t b = 0; b < batch; b++) {
    if (b == 3) continue;
    lists_match = lists_match && lists_dev.statuses[b] == lists_host.statuses[b] &&
                  std::fabs(lists_dev.log_z[b] - lists_host.log_z[b]) <= 1e-5f;
    for (uint32_t j = 0; j < samples; j++) {
      const size_t i = b * samples + j;
      lists_match = lists_match && lists_dev.tokens[i] == lists_host.tokens[i];
      lists_lp = std::fmax(lists_lp, std::fabs(lists_dev.logprobs[i] - lists_host.logprobs[i]));
    }
  }
  if (!lists_match || !(lists_lp <= 1e-5f) || lists_dev.tokens == dev.tokens) {
    std::fprintf(stderr, "FAIL sample_cuda_ex with token lists differs from the CPU (logprobs by %g)\n", lists_lp);
    failures++;
  } else {
    std::printf("ok   sample_cuda_ex with device token lists = CPU with the host lists, logprobs within %.1e; a "
                "row listing tokens out of order -> FS_ROW_INVALID_PARAMS\n", lists_lp);
  }
  const std::vector<uint32_t> bad_off = {0, 3, 2, 5, 7, 8, 10};
  cuda_check(cudaMemcpyAsync(d_off.ptr, bad_off.data(), bad_off.size() * 4, cudaMemcpyHostToDevice, stream), "bad");
  expect("sample_cuda_ex with decreasing offsets", sample_lists(&lists_opt), FS_OK);
  Result bad_lists;
  download(bad_lists);
  if (std::count(bad_lists.statuses.begin(), bad_lists.statuses.end(), FS_ROW_INVALID_PARAMS) != (long)batch) {
    std::fprintf(stderr, "FAIL decreasing offsets left rows valid\n");
    failures++;
  } else {
    std::printf("ok   decreasing offsets -> every row FS_ROW_INVALID_PARAMS\n");
  }

  // Top-N lists (N = 5) on the device path, with logprobs and a device mask: every row ranks its
  // tokens on the device (greedy rows 0 and 3 report the untempered distribution), row 2 allows
  // nothing (its list: tokens 0, logprobs NaN) and row 4 only three tokens (its list padded with
  // token 0 and -inf). The tokens, statuses, logprobs, logZ and lists sample_ex gives on the CPU
  // with the same mask; the lists are poisoned before each call, so every slot must be written.
  constexpr uint32_t top_n = 5;
  std::vector<uint32_t> few = grammar;
  std::fill(few.begin() + 4 * words, few.begin() + 5 * words, 0u);
  for (uint32_t t : {10u, 200u, 3000u}) few[4 * words + t / 32] |= 1u << (t % 32);
  DeviceBuffer<uint32_t> d_few(few.size());
  cuda_check(cudaMemcpyAsync(d_few.ptr, few.data(), few.size() * 4, cudaMemcpyHostToDevice, stream), "mask, few");
  DeviceBuffer<uint32_t> d_top_tokens(batch * top_n);
  DeviceBuffer<float> d_top_logprobs(batch * top_n);
  fs_cuda_outputs top_out = dev_out;
  top_out.top_n = top_n;
  top_out.top_tokens = d_top_tokens.ptr;
  top_out.top_logprobs = d_top_logprobs.ptr;
  auto poison_top = [&] {
    cuda_check(cudaMemsetAsync(d_top_tokens.ptr, 0xFF, batch * top_n * 4, stream), "poison top tokens");
    cuda_check(cudaMemsetAsync(d_top_logprobs.ptr, 0xFF, batch * top_n * 4, stream), "poison top logprobs");
  };
  // The device call on the device rows `d_rp` with the options `o`, into `ws` of `bytes` bytes.
  auto sample_top = [&](const fs_row_params *d_rp, const fs_cuda_options *o, void *ws, size_t bytes,
                        const fs_cuda_outputs *out) {
    return flashsampling_sample_cuda_ex(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rp, samples, o, ws, bytes, out,
                                        stream);
  };
  auto download_top = [&](TopLists &t) {
    cuda_check(cudaMemcpyAsync(t.tokens.data(), d_top_tokens.ptr, t.tokens.size() * 4, cudaMemcpyDeviceToHost, stream),
               "top tokens");
    cuda_check(cudaMemcpyAsync(t.logprobs.data(), d_top_logprobs.ptr, t.logprobs.size() * 4, cudaMemcpyDeviceToHost,
                               stream),
               "top logprobs");
    cuda_check(cudaStreamSynchronize(stream), "sync");
  };
  // Whether a call with top-N on the device gave what sample_ex gave on the CPU (tokens and statuses
  // identical, logprobs, logZ and the lists' logprobs within 1e-5); prints what differs.
  auto same_as_cpu = [&](const char *what, const Result &d, const Result &c, const TopLists &dt, const TopLists &ct) {
    float top_lp = 0.0f;
    const bool lists = same_top(what, dt, ct, 1e-5f, top_lp);
    const float lp = max_abs_diff(d.logprobs, c.logprobs), z = max_abs_diff(d.log_z, c.log_z);
    if (lists && d.tokens == c.tokens && d.statuses == c.statuses && lp <= 1e-5f && z <= 1e-5f) {
      std::printf("ok   %s = CPU: lists' logprobs within %.1e, logprobs within %.1e, logZ within %.1e\n", what, top_lp,
                  lp, z);
      return;
    }
    std::fprintf(stderr, "FAIL %s differs from the CPU: tokens %s, statuses %s, logprobs by %g, logZ by %g, lists %s\n",
                 what, d.tokens == c.tokens ? "same" : "differ", d.statuses == c.statuses ? "same" : "differ", lp, z,
                 lists ? "same" : "differ (above)");
    for (size_t b = 0; b < batch; b++) {
      std::fprintf(stderr, "  row %zu: status %u (CPU %u), first token %u (CPU %u)\n", b, d.statuses[b], c.statuses[b],
                   d.tokens[b * samples], c.tokens[b * samples]);
    }
    failures++;
  };
  {
    fs_cuda_options few_opt = {};
    few_opt.mask = d_few.ptr;
    size_t top_bytes = 0;
    expect("workspace bytes with a mask, logprobs and top-N",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &few_opt, true, top_n,
                                              &top_bytes),
           FS_OK);
    expect("top-N in a workspace sized without it",
           sample_top(d_rows.ptr, &few_opt, d_mask_ws.ptr, mask_ws_bytes, &top_out), FS_ERROR_SHAPE);
    DeviceBuffer<uint8_t> d_top_ws(top_bytes);
    poison_top();
    expect("sample_cuda_ex with top-N, logprobs and a device mask",
           sample_top(d_rows.ptr, &few_opt, d_top_ws.ptr, top_bytes, &top_out), FS_OK);
    Result top_dev, top_host;
    TopLists top_dev_lists(batch, top_n), top_host_lists(batch, top_n);
    download(top_dev);
    download_top(top_dev_lists);
    opt = {};
    opt.mask = few.data();
    opt.mask_len = few.size();
    expect("sample_ex with the same mask and top-N on the CPU",
           sample_ex(cpu, cpu_head, top_host, nullptr, &top_host_lists), FS_OK);
    if (top_host.statuses[2] != FS_ROW_ALL_MASKED || !bad_list(top_host_lists, 2) || padded(top_host_lists, 4) != 2 ||
        padded(top_host_lists, 1) != 0) {
      std::fprintf(stderr, "FAIL the CPU's lists are not what this check means to compare (row 2 status %u, row 4 "
                   "padded %zu)\n", top_host.statuses[2], padded(top_host_lists, 4));
      failures++;
    }
    same_as_cpu("sample_cuda_ex with top-N and a device mask (row 2 all masked, row 4 three tokens)", top_dev, top_host,
                top_dev_lists, top_host_lists);

    // Bad top-N requests are refused before anything is enqueued.
    fs_cuda_outputs too_many = top_out, no_tokens = top_out, no_logprobs = top_out;
    too_many.top_n = 21;
    no_tokens.top_tokens = nullptr;
    no_logprobs.top_logprobs = nullptr;
    size_t unused = 0;
    expect("workspace bytes for top-N 21",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &few_opt, true, 21, &unused),
           FS_ERROR_PARAM);
    expect("top-N 21", sample_top(d_rows.ptr, &few_opt, d_top_ws.ptr, top_bytes, &too_many), FS_ERROR_PARAM);
    expect("top-N without a tokens buffer", sample_top(d_rows.ptr, &few_opt, d_top_ws.ptr, top_bytes, &no_tokens),
           FS_ERROR_SHAPE);
    expect("top-N without a logprobs buffer", sample_top(d_rows.ptr, &few_opt, d_top_ws.ptr, top_bytes, &no_logprobs),
           FS_ERROR_SHAPE);
    fs_lm_head *shard = nullptr;
    expect("borrow the weights as a shard for top-N",
           flashsampling_lm_head_borrow_cuda(ctx, d_w.ptr, FS_DTYPE_BF16, vocab, dim, 0, vocab + 100, &shard), FS_OK);
    expect("top-N on a shard head",
           flashsampling_sample_cuda_ex(ctx, shard, d_h.ptr, FS_DTYPE_BF16, batch, d_rows.ptr, samples, nullptr,
                                        d_top_ws.ptr, top_bytes, &top_out, stream),
           FS_ERROR_PARAM);
    flashsampling_lm_head_destroy(shard);
  }

  // Truncation in device memory, finished on the device: top-k; top-p; all three on a greedy row
  // (its logprobs); and on two nearly flat rows (temperature 5) top-p 0.95 and min-p 0.2, whose
  // survivors outnumber the 1024 tokens the selection keeps, so that the exact fallback over the
  // whole row finishes them. The same as sample_ex on the CPU with the same truncation from the
  // host; a top-k over 1024 flags its row only.
  {
    std::vector<fs_row_params> rt = rows;
    rt[2].temperature = 0.0f;
    rt[3].temperature = rt[4].temperature = 5.0f;
    std::vector<fs_truncation> tr = {{50, 1.0f, 0.0f},  {0, 0.9f, 0.0f},  {40, 0.9f, 0.05f},
                                     {0, 0.95f, 0.0f}, {0, 1.0f, 0.2f}, {0, 1.0f, 0.0f}};
    // The forced rows' survivors, from their logits computed here (double).
    auto survivors = [&](size_t b) {
      std::vector<double> y(vocab);
      for (size_t t = 0; t < vocab; t++) {
        double l = 0.0;
        for (size_t k = 0; k < dim; k++) {
          uint32_t wu = uint32_t(w[t * dim + k]) << 16, hu = uint32_t(h[b * dim + k]) << 16;
          float wf, hf;
          std::memcpy(&wf, &wu, 4);
          std::memcpy(&hf, &hu, 4);
          l += double(wf) * double(hf);
        }
        y[t] = l / rt[b].temperature;
      }
      std::sort(y.begin(), y.end(), [](double a, double c) { return a > c; });
      double mass = 0.0, kept = 0.0;
      for (double v : y) mass += std::exp(v - y[0]);
      size_t n = 0;
      while (n < vocab && (tr[b].top_p >= 1.0f || kept < tr[b].top_p * mass) &&
             std::exp(y[n] - y[0]) >= tr[b].min_p)
        kept += std::exp(y[n++] - y[0]);
      return n;
    };
    const size_t forced3 = survivors(3), forced4 = survivors(4);
    DeviceBuffer<fs_row_params> d_rt(batch);
    DeviceBuffer<fs_truncation> d_tr(batch);
    cuda_check(cudaMemcpyAsync(d_rt.ptr, rt.data(), batch * sizeof(fs_row_params), cudaMemcpyHostToDevice, stream),
               "truncation rows");
    cuda_check(cudaMemcpyAsync(d_tr.ptr, tr.data(), batch * sizeof(fs_truncation), cudaMemcpyHostToDevice, stream),
               "truncation");
    fs_cuda_options t_opt = {};
    t_opt.truncation = d_tr.ptr;
    size_t t_bytes = 0;
    expect("workspace bytes with truncation and logprobs",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &t_opt, true, 0, &t_bytes),
           FS_OK);
    DeviceBuffer<uint8_t> d_t_ws(t_bytes);
    auto sample_truncated = [&](Result &r) {
      fs_status s = flashsampling_sample_cuda_ex(ctx, head, d_h.ptr, FS_DTYPE_BF16, batch, d_rt.ptr, samples, &t_opt,
                                                 d_t_ws.ptr, t_bytes, &dev_out, stream);
      download(r);
      return s;
    };
    Result t_dev, t_host, t_bad;
    expect("sample_cuda_ex with truncation in device memory", sample_truncated(t_dev), FS_OK);
    opt = {};
    opt.truncation = tr.data();
    opt.truncation_len = batch;
    expect("sample_ex with the same truncation on the CPU", sample_ex(cpu, cpu_head, t_host, rt.data()), FS_OK);
    const float t_lp = max_abs_diff(t_dev.logprobs, t_host.logprobs), t_z = max_abs_diff(t_dev.log_z, t_host.log_z);
    if (forced3 <= 1024 || forced4 <= 1024 || t_dev.tokens != t_host.tokens || t_dev.statuses != t_host.statuses ||
        !(t_lp <= 1e-5f) || !(t_z <= 1e-5f)) {
      std::fprintf(stderr, "FAIL truncation on the device path differs from the CPU (logprobs by %g, logZ by %g; "
                   "forced rows keep %zu and %zu tokens)\n", t_lp, t_z, forced3, forced4);
      failures++;
    } else {
      std::printf("ok   truncation on the device path = CPU, logprobs within %.1e, logZ within %.1e; two rows "
                  "finished from the whole row (%zu and %zu survivors)\n", t_lp, t_z, forced3, forced4);
    }
    // Truncation ranks the whole vocabulary: a shard head is refused before anything is enqueued.
    fs_lm_head *shard = nullptr;
    expect("borrow the same weights as a shard of a larger vocabulary",
           flashsampling_lm_head_borrow_cuda(ctx, d_w.ptr, FS_DTYPE_BF16, vocab, dim, 0, vocab + 100, &shard), FS_OK);
    expect("truncation on a shard head",
           flashsampling_sample_cuda_ex(ctx, shard, d_h.ptr, FS_DTYPE_BF16, batch, d_rt.ptr, samples, &t_opt,
                                        d_t_ws.ptr, t_bytes, &dev_out, stream),
           FS_ERROR_PARAM);
    flashsampling_lm_head_destroy(shard);
    tr[5] = {2000, 1.0f, 0.0f};
    cuda_check(cudaMemcpyAsync(d_tr.ptr + 5, &tr[5], sizeof(fs_truncation), cudaMemcpyHostToDevice, stream), "top-k");
    expect("sample_cuda_ex with a top-k over 1024 in device memory", sample_truncated(t_bad), FS_OK);
    bool others = true;
    for (size_t i = 0; i < 5 * samples; i++) others = others && t_bad.tokens[i] == t_dev.tokens[i];
    if (t_bad.statuses[5] != FS_ROW_INVALID_PARAMS || !others) {
      std::fprintf(stderr, "FAIL a top-k over 1024: status %u\n", t_bad.statuses[5]);
      failures++;
    } else {
      std::printf("ok   a top-k over 1024 -> FS_ROW_INVALID_PARAMS, other rows unchanged\n");
    }

    // Top-N with truncation in the same call: the rows above with row 1 plain (it ranks for its list
    // only) and row 5 a top-k 3, below N (its list padded with token 0 and -inf). Each row's list is
    // of the distribution it samples from: greedy rows 0 and 2 truncated too, rows 3 and 4 (finished
    // from their whole row) of their survivors. As sample_ex gives them on the CPU, and the same
    // when the call is replayed from a CUDA graph. Then a top-k over 1024 on row 5: its list tokens 0
    // and NaN, the other rows' lists unchanged.
    tr[1] = {0, 1.0f, 0.0f};
    tr[5] = {3, 1.0f, 0.0f};
    cuda_check(cudaMemcpyAsync(d_tr.ptr, tr.data(), batch * sizeof(fs_truncation), cudaMemcpyHostToDevice, stream),
               "truncation with top-N");
    size_t tn_bytes = 0;
    expect("workspace bytes with truncation, logprobs and top-N",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, batch, samples, &t_opt, true, top_n, &tn_bytes),
           FS_OK);
    DeviceBuffer<uint8_t> d_tn_ws(tn_bytes);
    poison_top();
    expect("sample_cuda_ex with truncation and top-N", sample_top(d_rt.ptr, &t_opt, d_tn_ws.ptr, tn_bytes, &top_out),
           FS_OK);
    Result tn_dev, tn_host, tn_replayed, tn_bad;
    TopLists tn_dev_lists(batch, top_n), tn_host_lists(batch, top_n), tn_replayed_lists(batch, top_n),
        tn_bad_lists(batch, top_n);
    download(tn_dev);
    download_top(tn_dev_lists);
    opt = {};
    opt.truncation = tr.data();
    opt.truncation_len = batch;
    expect("sample_ex with the same truncation and top-N on the CPU",
           sample_ex(cpu, cpu_head, tn_host, rt.data(), &tn_host_lists), FS_OK);
    if (padded(tn_host_lists, 5) != 2 || padded(tn_host_lists, 1) != 0 || padded(tn_host_lists, 3) != 0 ||
        padded(tn_host_lists, 4) != 0) {
      std::fprintf(stderr, "FAIL the CPU's lists are not what this check means to compare (rows 1, 3, 4, 5 padded "
                   "%zu, %zu, %zu, %zu; expected 0, 0, 0, 2)\n", padded(tn_host_lists, 1), padded(tn_host_lists, 3),
                   padded(tn_host_lists, 4), padded(tn_host_lists, 5));
      failures++;
    }
    same_as_cpu("sample_cuda_ex with truncation and top-N (plain, greedy, whole-row and top-k 3 rows)", tn_dev, tn_host,
                tn_dev_lists, tn_host_lists);
    poison_top();
    cudaGraph_t tn_graph;
    cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    const fs_status tn_captured = sample_top(d_rt.ptr, &t_opt, d_tn_ws.ptr, tn_bytes, &top_out);
    cuda_check(cudaStreamEndCapture(stream, &tn_graph), "end capture");
    expect("sample_cuda_ex with truncation and top-N captured in a CUDA graph", tn_captured, FS_OK);
    cudaGraphExec_t tn_exec;
    cuda_check(cudaGraphInstantiate(&tn_exec, tn_graph, 0), "instantiate");
    cuda_check(cudaGraphLaunch(tn_exec, stream), "replay");
    download(tn_replayed);
    download_top(tn_replayed_lists);
    if (tn_replayed.tokens != tn_dev.tokens || tn_replayed_lists.tokens != tn_dev_lists.tokens ||
        tn_replayed_lists.logprobs != tn_dev_lists.logprobs) {
      std::fprintf(stderr, "FAIL the replayed graph's top-N lists differ from the direct call's\n");
      failures++;
    } else {
      std::printf("ok   graph replay of sample_cuda_ex with top-N = direct call\n");
    }
    cudaGraphExecDestroy(tn_exec);
    cudaGraphDestroy(tn_graph);
    tr[5] = {2000, 1.0f, 0.0f};
    cuda_check(cudaMemcpyAsync(d_tr.ptr + 5, &tr[5], sizeof(fs_truncation), cudaMemcpyHostToDevice, stream), "top-k");
    poison_top();
    expect("sample_cuda_ex with top-N and a top-k over 1024",
           sample_top(d_rt.ptr, &t_opt, d_tn_ws.ptr, tn_bytes, &top_out), FS_OK);
    download(tn_bad);
    download_top(tn_bad_lists);
    const size_t first_rows = 5 * top_n;
    const bool unchanged = std::equal(tn_bad_lists.tokens.begin(), tn_bad_lists.tokens.begin() + first_rows,
                                      tn_dev_lists.tokens.begin()) &&
                           std::equal(tn_bad_lists.logprobs.begin(), tn_bad_lists.logprobs.begin() + first_rows,
                                      tn_dev_lists.logprobs.begin());
    if (tn_bad.statuses[5] != FS_ROW_INVALID_PARAMS || !bad_list(tn_bad_lists, 5) || !unchanged) {
      std::fprintf(stderr, "FAIL top-N with a top-k over 1024: status %u, row 5's list %s, other rows' lists %s\n",
                   tn_bad.statuses[5], bad_list(tn_bad_lists, 5) ? "tokens 0 and NaN" : "not tokens 0 and NaN",
                   unchanged ? "unchanged" : "changed");
      for (size_t i = 0; i < top_n; i++) {
        std::fprintf(stderr, "  row 5 slot %zu: token %u logprob %.9g\n", i, tn_bad_lists.tokens[5 * top_n + i],
                     tn_bad_lists.logprobs[5 * top_n + i]);
      }
      failures++;
    } else {
      std::printf("ok   top-N with a top-k over 1024: that row's list tokens 0 and NaN, the others unchanged\n");
    }
  }

  // More rows than the tensor-core kernel takes in one pass (128), with a device mask and no
  // logprobs: the second pass must read its own rows' masks. Every token allowed by its row's mask,
  // and (dot products summed in another order on the CPU can break near-ties) at least 99% of them
  // the CPU's.
  {
    constexpr size_t big = 130;
    std::vector<uint16_t> hb(big * dim);
    for (auto &x : hb) x = to_bf16(2.0f * next());
    std::vector<fs_row_params> rb;
    for (size_t b = 0; b < big; b++) rb.push_back({b % 5 == 0 ? 0.0f : 0.9f, 5000 + b, 3});
    std::vector<uint32_t> mb(big * words);
    for (auto &m : mb) m = static_cast<uint32_t>((next() + 0.5f) * 4294967040.0f) & 0x00FF00FFu;
    DeviceBuffer<uint16_t> d_hb(hb.size());
    DeviceBuffer<fs_row_params> d_rb(big);
    DeviceBuffer<uint32_t> d_mb(mb.size()), d_tb(big * samples);
    DeviceBuffer<uint8_t> d_sb(big);
    cuda_check(cudaMemcpyAsync(d_hb.ptr, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice, stream), "H, 130 rows");
    cuda_check(cudaMemcpyAsync(d_rb.ptr, rb.data(), big * sizeof(fs_row_params), cudaMemcpyHostToDevice, stream),
               "rows, 130");
    cuda_check(cudaMemcpyAsync(d_mb.ptr, mb.data(), mb.size() * 4, cudaMemcpyHostToDevice, stream), "mask, 130");
    fs_cuda_options big_opt = {};
    big_opt.mask = d_mb.ptr;
    size_t big_bytes = 0;
    expect("workspace bytes, 130 rows with a mask",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_BF16, big, samples, &big_opt, false, 0, &big_bytes),
           FS_OK);
    DeviceBuffer<uint8_t> d_big_ws(big_bytes);
    const fs_cuda_outputs big_out = {d_tb.ptr, d_sb.ptr, nullptr, nullptr};
    expect("sample_cuda_ex, 130 rows with a device mask",
           flashsampling_sample_cuda_ex(ctx, head, d_hb.ptr, FS_DTYPE_BF16, big, d_rb.ptr, samples, &big_opt,
                                        d_big_ws.ptr, big_bytes, &big_out, stream),
           FS_OK);
    std::vector<uint32_t> tb(big * samples), tc(big * samples);
    std::vector<uint8_t> sb(big), sc(big);
    cuda_check(cudaMemcpyAsync(tb.data(), d_tb.ptr, tb.size() * 4, cudaMemcpyDeviceToHost, stream), "tokens, 130");
    cuda_check(cudaMemcpyAsync(sb.data(), d_sb.ptr, big, cudaMemcpyDeviceToHost, stream), "statuses, 130");
    cuda_check(cudaStreamSynchronize(stream), "sync");
    fs_sample_options big_host = {};
    big_host.mask = mb.data();
    big_host.mask_len = mb.size();
    fs_sample_outputs cpu_out = {};
    cpu_out.tokens = tc.data();
    cpu_out.tokens_len = tc.size();
    cpu_out.statuses = sc.data();
    cpu_out.statuses_len = big;
    expect("sample_ex, 130 rows with the mask on the CPU",
           flashsampling_sample_ex(cpu, cpu_head, hb.data(), hb.size() * 2, FS_DTYPE_BF16, big, rb.data(), big, samples,
                                   &big_host, &cpu_out),
           FS_OK);
    size_t same = 0, disallowed = 0;
    for (size_t i = 0; i < tb.size(); i++) {
      same += tb[i] == tc[i];
      const size_t b = i / samples;
      disallowed += ((mb[b * words + tb[i] / 32] >> (tb[i] % 32)) & 1u) == 0;
    }
    if (sb != sc || disallowed != 0 || same * 100 < tb.size() * 99) {
      std::fprintf(stderr, "FAIL 130 rows with a device mask: %zu tokens disallowed, %zu of %zu as on the CPU\n",
                   disallowed, same, tb.size());
      failures++;
    } else {
      std::printf("ok   130 rows (two passes) with a device mask, no logprobs: every token allowed, %zu of %zu as on "
                  "the CPU\n", same, tb.size());
    }
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

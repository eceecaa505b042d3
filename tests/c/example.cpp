// C++17 consumer of libflashsampling with a small RAII wrapper: handles are freed by destructors
// and a failed status becomes an exception carrying the library's message. Exit codes as
// example.c (77: backend not available).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "flashsampling.h"

namespace fs {

struct Error : std::runtime_error {
  fs_status status;
  Error(fs_status s, const char *msg) : std::runtime_error(msg), status(s) {}
};

inline void check(fs_status s) {
  if (s != FS_OK) throw Error(s, flashsampling_last_error());
}

struct ContextDeleter {
  void operator()(fs_context *c) const { flashsampling_context_destroy(c); }
};
struct HeadDeleter {
  void operator()(fs_lm_head *h) const { flashsampling_lm_head_destroy(h); }
};

class Context {
 public:
  explicit Context(fs_backend backend) {
    fs_context *raw = nullptr;
    check(flashsampling_context_create(backend, &raw));
    ctx_.reset(raw);
  }
  const char *backend() const { return flashsampling_context_backend(ctx_.get()); }
  uint32_t features() const {  // fs_feature bits
    uint32_t bits = 0;
    check(flashsampling_context_features(ctx_.get(), &bits));
    return bits;
  }
  fs_context *get() const { return ctx_.get(); }

 private:
  std::unique_ptr<fs_context, ContextDeleter> ctx_;
};

class LmHead {
 public:
  LmHead(const Context &ctx, const std::vector<float> &weights, size_t dim) : dim_(dim) {
    fs_lm_head *raw = nullptr;
    check(flashsampling_lm_head_load(ctx.get(), weights.data(), weights.size() * sizeof(float), FS_DTYPE_F32, dim, 0,
                                     0, &raw));
    head_.reset(raw);
  }
  size_t dim() const { return dim_; }
  fs_lm_head *get() const { return head_.get(); }

 private:
  size_t dim_;
  std::unique_ptr<fs_lm_head, HeadDeleter> head_;
};

struct Samples {
  std::vector<uint32_t> tokens;  // [batch * samples]
  std::vector<uint8_t> statuses;  // [batch]
};

inline Samples sample(const Context &ctx, const LmHead &head, const std::vector<float> &hidden,
                      const std::vector<fs_row_params> &rows, uint32_t samples) {
  Samples out{std::vector<uint32_t>(rows.size() * samples), std::vector<uint8_t>(rows.size())};
  check(flashsampling_sample(ctx.get(), head.get(), hidden.data(), hidden.size() * sizeof(float), FS_DTYPE_F32,
                             rows.size(), rows.data(), rows.size(), samples, out.tokens.data(), out.tokens.size(),
                             out.statuses.data(), out.statuses.size()));
  return out;
}

// Optional per-row inputs of sample_ex; an empty vector is an input not used.
struct Options {
  std::vector<uint32_t> mask;  // [batch * ceil(V / 32)] allowed-token bits
  std::vector<size_t> bias_offsets;  // CSR: [batch + 1]
  std::vector<uint32_t> bias_tokens;
  std::vector<float> bias_values;
  std::vector<fs_truncation> truncation;  // [batch]

  fs_sample_options view() const {
    fs_sample_options o{};
    o.mask = data_or_null(mask), o.mask_len = mask.size();
    o.bias = {data_or_null(bias_offsets), bias_tokens.data(), bias_values.data(), bias_tokens.size()};
    o.truncation = data_or_null(truncation), o.truncation_len = truncation.size();
    return o;
  }

 private:
  template <typename T>
  static const T *data_or_null(const std::vector<T> &v) { return v.empty() ? nullptr : v.data(); }
};

struct Results : Samples {
  std::vector<float> logprobs;  // [batch * samples]
  std::vector<float> log_normalizer;  // [batch]
  uint32_t top_n = 0;
  std::vector<uint32_t> top_tokens;  // [batch * top_n]
  std::vector<float> top_logprobs;
};

// Samples with options, logprobs, and the top_n most likely tokens of each row (0: none).
inline Results sample_ex(const Context &ctx, const LmHead &head, const std::vector<float> &hidden,
                         const std::vector<fs_row_params> &rows, uint32_t samples, const Options &options,
                         uint32_t top_n) {
  const size_t batch = rows.size();
  Results r;
  r.tokens.resize(batch * samples), r.statuses.resize(batch), r.logprobs.resize(batch * samples);
  r.log_normalizer.resize(batch), r.top_n = top_n, r.top_tokens.resize(batch * top_n);
  r.top_logprobs.resize(batch * top_n);
  fs_sample_outputs out{};
  out.tokens = r.tokens.data(), out.tokens_len = r.tokens.size();
  out.statuses = r.statuses.data(), out.statuses_len = r.statuses.size();
  out.logprobs = r.logprobs.data(), out.logprobs_len = r.logprobs.size();
  out.log_normalizer = r.log_normalizer.data(), out.log_normalizer_len = batch;
  out.top_n = top_n;
  out.top_tokens = r.top_tokens.data(), out.top_tokens_len = r.top_tokens.size();
  out.top_logprobs = r.top_logprobs.data(), out.top_logprobs_len = r.top_logprobs.size();
  fs_sample_options o = options.view();
  check(flashsampling_sample_ex(ctx.get(), head.get(), hidden.data(), hidden.size() * sizeof(float), FS_DTYPE_F32,
                                batch, rows.data(), batch, samples, &o, &out));
  return r;
}

}  // namespace fs

static bool check(bool ok, const char *what) {
  if (!ok) std::fprintf(stderr, "FAIL %s\n", what);
  return ok;
}

// Returns whether every check passed. Row 0: greedy along +e1 with top-k 4 and top-4 logprobs,
// whose probabilities must sum to 1; row 1: T = 0.7 with a mask allowing {3, 17, 30} and a bias.
static bool sample_ex_checks(const fs::Context &ctx, const fs::LmHead &head, const std::vector<float> &hidden) {
  constexpr uint32_t samples = 6, top_n = 4;
  const std::vector<fs_row_params> rows = {{0.0f, 7, 1}, {0.7f, 8, 1}};
  fs::Options options;
  options.mask = {~0u, (1u << 3) | (1u << 17) | (1u << 30)};
  options.bias_offsets = {0, 0, 1};
  options.bias_tokens = {3};
  options.bias_values = {2.0f};
  options.truncation = {{4, 1.0f, 0.0f}, {0, 1.0f, 0.0f}};
  const uint32_t all = FS_FEATURE_CONSTRAINTS | FS_FEATURE_LOGPROBS | FS_FEATURE_TRUNCATION | FS_FEATURE_TOP_LOGPROBS;
  if (ctx.features() != all) {
    try {
      fs::sample_ex(ctx, head, hidden, rows, samples, options, top_n);
      return check(false, "a backend without every feature accepted them all");
    } catch (const fs::Error &e) {
      std::printf("ok   features this backend lacks -> %d: %s\n", static_cast<int>(e.status), e.what());
      return check(e.status == FS_ERROR_UNSUPPORTED, "refusal is FS_ERROR_UNSUPPORTED");
    }
  }
  fs::Results r = fs::sample_ex(ctx, head, hidden, rows, samples, options, top_n);
  bool ok = true;
  double mass = 0;
  for (uint32_t i = 0; i < top_n; i++) {
    mass += std::exp(r.top_logprobs[i]);
    ok &= check(r.top_tokens[i] == 31 - i, "greedy row: top-N 31, 30, 29, 28");
  }
  ok &= check(std::fabs(mass - 1.0) < 1e-5, "top-k 4 row: the top-4 probabilities sum to 1");
  for (uint32_t s = 0; s < samples; s++) {
    const uint32_t t = r.tokens[samples + s];
    ok &= check(r.tokens[s] == 31 && r.logprobs[s] == r.top_logprobs[0], "greedy row: token 31 with the top-1 logprob");
    ok &= check(t == 3 || t == 17 || t == 30, "masked row: an allowed token");
    for (uint32_t i = 0; i < top_n; i++)  // the sampled token's logprob (score less its noise) is its top-N one
      if (r.top_tokens[top_n + i] == t)
        ok &= check(std::fabs(r.logprobs[samples + s] - r.top_logprobs[top_n + i]) < 1e-4f, "sampled logprobs");
  }
  ok &= check(std::isinf(r.top_logprobs[2 * top_n - 1]), "masked row: three tokens, top-N padded");
  options.truncation[1].top_p = 0.0f;
  try {
    fs::sample_ex(ctx, head, hidden, rows, samples, options, top_n);
    return check(false, "top_p 0 was accepted");
  } catch (const fs::Error &e) {
    std::printf("ok   top_p 0 -> %d: %s\n", static_cast<int>(e.status), e.what());
    ok &= check(e.status == FS_ERROR_PARAM, "top_p 0 is FS_ERROR_PARAM");
  }
  return ok;
}

static fs_backend backend_code(const char *name) {
  if (!std::strcmp(name, "cpu")) return FS_BACKEND_CPU;
  if (!std::strcmp(name, "cpu-reference")) return FS_BACKEND_CPU_REFERENCE;
  if (!std::strcmp(name, "wgpu")) return FS_BACKEND_WGPU;
  if (!std::strcmp(name, "cuda")) return FS_BACKEND_CUDA;
  return FS_BACKEND_AUTO;
}

int main(int argc, char **argv) {
  constexpr size_t vocab = 32, dim = 4;
  try {
    fs::Context ctx(backend_code(argc > 1 ? argv[1] : "auto"));
    std::printf("backend %s\n", ctx.backend());
    std::vector<float> w(vocab * dim, 0.0f);
    for (size_t t = 0; t < vocab; t++) w[t * dim + 1] = static_cast<float>(t) / vocab;
    fs::LmHead head(ctx, w, dim);

    // Row 0 greedy along +e1 (argmax: the last token), row 1 sampled at T = 0.7.
    std::vector<float> hidden = {0, 5, 0, 0, 0, 1, 0, 0};
    std::vector<fs_row_params> rows = {{0.0f, 7, 0}, {0.7f, 8, 0}};
    fs::Samples out = fs::sample(ctx, head, hidden, rows, 5);
    for (size_t s = 0; s < 5; s++) {
      if (out.tokens[s] != vocab - 1 || out.tokens[5 + s] >= vocab) {
        std::fprintf(stderr, "FAIL tokens %u %u\n", out.tokens[s], out.tokens[5 + s]);
        return 1;
      }
    }
    if (out.statuses[0] != FS_ROW_OK || out.statuses[1] != FS_ROW_OK) return 1;

    if (!sample_ex_checks(ctx, head, hidden)) return 1;

    try {  // a wrong hidden size surfaces as an exception with the library's message
      fs::sample(ctx, head, std::vector<float>(7), rows, 5);
      std::fprintf(stderr, "FAIL a bad hidden size was accepted\n");
      return 1;
    } catch (const fs::Error &e) {
      std::printf("ok   bad hidden size -> %d: %s\n", static_cast<int>(e.status), e.what());
      if (e.status != FS_ERROR_SHAPE) return 1;
    }
  } catch (const fs::Error &e) {
    if (e.status == FS_ERROR_UNAVAILABLE) {
      std::printf("skip: %s\n", e.what());
      return 77;
    }
    std::fprintf(stderr, "FAIL %d: %s\n", static_cast<int>(e.status), e.what());
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}

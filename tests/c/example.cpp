// C++17 consumer of libflashsampling with a small RAII wrapper: handles are freed by destructors
// and a failed status becomes an exception carrying the library's message. Exit codes as
// example.c (77: backend not available).
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

}  // namespace fs

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

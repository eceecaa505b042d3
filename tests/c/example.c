/* C consumer of libflashsampling: samples on the backend named by argv[1] (cpu, cpu-reference,
 * wgpu, cuda, auto) and checks that bad input returns a status and a message. Exit 0: passed;
 * 77: the backend is not available here; anything else: failed. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flashsampling.h"

#define VOCAB 16
#define DIM 8
#define BATCH 3
#define SAMPLES 4

static int failures = 0;

/* Checks that a call returned `want` and, on failure, left a message. */
static void expect(const char *what, fs_status got, fs_status want) {
  const char *msg = flashsampling_last_error();
  if (got != want || (want != FS_OK && msg[0] == '\0')) {
    fprintf(stderr, "FAIL %s: status %d, expected %d (%s)\n", what, (int)got, (int)want, msg);
    failures++;
  } else if (want != FS_OK) {
    printf("ok   %s -> %d: %s\n", what, (int)got, msg);
  }
}

static uint32_t backend_code(const char *name) {
  if (strcmp(name, "cpu") == 0) return FS_BACKEND_CPU;
  if (strcmp(name, "cpu-reference") == 0) return FS_BACKEND_CPU_REFERENCE;
  if (strcmp(name, "wgpu") == 0) return FS_BACKEND_WGPU;
  if (strcmp(name, "cuda") == 0) return FS_BACKEND_CUDA;
  return FS_BACKEND_AUTO;
}

/* ---- flashsampling_sample_ex: constraints, truncation, logprobs ---- */

#define EX_BATCH 6
#define EX_SAMPLES 8
#define TOP_N 3
#define ALL_FEATURES \
  (FS_FEATURE_CONSTRAINTS | FS_FEATURE_LOGPROBS | FS_FEATURE_TRUNCATION | FS_FEATURE_TOP_LOGPROBS)

static void check(int ok, const char *what) {
  if (!ok) { fprintf(stderr, "FAIL %s\n", what); failures++; }
}

static int near(double got, double want) { return fabs(got - want) <= 1e-4 * (1.0 + fabs(want)); }

/* Logit of token t for a hidden state a·e0 against the example's W: a · t / VOCAB. */
static double logit(double a, int t) { return a * t / VOCAB; }

/* log Σ exp(y_t) over the tokens t in [first, last], with token `changed` (if any) given y = `y`. */
static double log_z(double a, int first, int last, int changed, double y) {
  double sum = 0;
  for (int t = first; t <= last; t++) sum += exp(t == changed ? y : logit(a, t));
  return log(sum);
}

/* The caller's output buffers of one extended call. */
typedef struct {
  uint32_t tokens[EX_BATCH * EX_SAMPLES];
  uint8_t statuses[EX_BATCH];
  float logprobs[EX_BATCH * EX_SAMPLES];
  float log_z[EX_BATCH];
  uint32_t top_tokens[EX_BATCH * TOP_N];
  float top_logprobs[EX_BATCH * TOP_N];
} ex_buffers;

static fs_sample_outputs outputs_of(ex_buffers *b) {
  fs_sample_outputs o = {0};
  o.tokens = b->tokens, o.tokens_len = EX_BATCH * EX_SAMPLES;
  o.statuses = b->statuses, o.statuses_len = EX_BATCH;
  o.logprobs = b->logprobs, o.logprobs_len = EX_BATCH * EX_SAMPLES;
  o.log_normalizer = b->log_z, o.log_normalizer_len = EX_BATCH;
  o.top_n = TOP_N;
  o.top_tokens = b->top_tokens, o.top_tokens_len = EX_BATCH * TOP_N;
  o.top_logprobs = b->top_logprobs, o.top_logprobs_len = EX_BATCH * TOP_N;
  return o;
}

/* The rows of the extended call, all with h = 10·e0 (logits 10t/16) except row 1 (h = 0):
 * 0: greedy, top-k 3            -> token 15; logprobs over {13, 14, 15}
 * 1: T = 1, bias +100 on token 3 -> always 3
 * 2: T = 1, mask {2, 5, 9}       -> one of them
 * 3: greedy, token 15 seen once, repetition 2 -> token 14
 * 4: mask allows nothing         -> FS_ROW_ALL_MASKED
 * 5: T = 1, top-k 2              -> 14 or 15; top-N padded after two tokens */
static const float EX_A[EX_BATCH] = {10, 0, 10, 10, 10, 10};
static const fs_row_params EX_ROWS[EX_BATCH] = {{0, 11, 0}, {1, 12, 0}, {1, 13, 0}, {0, 14, 0}, {1, 15, 0}, {1, 16, 0}};
static const uint32_t EX_MASK[EX_BATCH] = {~0u, ~0u, (1u << 2) | (1u << 5) | (1u << 9), ~0u, 0u, ~0u};
static const size_t EX_BIAS_OFFSETS[EX_BATCH + 1] = {0, 0, 1, 1, 1, 1, 1};
static const uint32_t EX_BIAS_TOKENS[1] = {3};
static const float EX_BIAS_VALUES[1] = {100};
static const size_t EX_COUNT_OFFSETS[EX_BATCH + 1] = {0, 0, 0, 0, 1, 1, 1};
static const uint32_t EX_COUNT_TOKENS[1] = {15};
static const uint32_t EX_COUNTS[1] = {1};
static const fs_penalty_params EX_PENALTIES[EX_BATCH] = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {2, 0, 0}, {1, 0, 0}, {1, 0, 0}};
static const fs_truncation EX_TRUNCATION[EX_BATCH] = {{3, 1, 0}, {0, 1, 0}, {0, 1, 0}, {0, 1, 0}, {0, 1, 0}, {2, 1, 0}};

static fs_sample_options options_all(void) {
  fs_sample_options o = {0};
  o.mask = EX_MASK, o.mask_len = EX_BATCH;
  o.bias.offsets = EX_BIAS_OFFSETS, o.bias.tokens = EX_BIAS_TOKENS, o.bias.values = EX_BIAS_VALUES, o.bias.len = 1;
  o.penalty_counts.offsets = EX_COUNT_OFFSETS, o.penalty_counts.tokens = EX_COUNT_TOKENS;
  o.penalty_counts.counts = EX_COUNTS, o.penalty_counts.len = 1;
  o.penalties = EX_PENALTIES, o.penalties_len = EX_BATCH;
  o.truncation = EX_TRUNCATION, o.truncation_len = EX_BATCH;
  return o;
}

static float ex_hidden[EX_BATCH * DIM];

static fs_status sample_ex(fs_context *ctx, fs_lm_head *head, const fs_sample_options *o, const fs_sample_outputs *out) {
  return flashsampling_sample_ex(ctx, head, ex_hidden, sizeof ex_hidden, FS_DTYPE_F32, EX_BATCH, EX_ROWS, EX_BATCH,
                                 EX_SAMPLES, o, out);
}

static int is_one_of(uint32_t t, uint32_t a, uint32_t b, uint32_t c) { return t == a || t == b || t == c; }

/* Tokens of every row, and each sample's logprob against log Σ exp computed here. */
static void check_ex_tokens(const ex_buffers *b) {
  const double z0 = log_z(10, 13, 15, -1, 0), z3 = log_z(10, 0, 15, 15, logit(10, 15) / 2);
  const double z2 = log(exp(logit(10, 2)) + exp(logit(10, 5)) + exp(logit(10, 9)));
  const uint8_t want_status[EX_BATCH] = {FS_ROW_OK, FS_ROW_OK, FS_ROW_OK, FS_ROW_OK, FS_ROW_ALL_MASKED, FS_ROW_OK};
  for (int r = 0; r < EX_BATCH; r++) check(b->statuses[r] == want_status[r], "row statuses");
  for (int s = 0; s < EX_SAMPLES; s++) {
    const uint32_t *t = b->tokens + s;
    const float *lp = b->logprobs + s;
    check(t[0] == 15 && near(lp[0], logit(10, 15) - z0), "greedy top-k row: token 15, logprob 10·15/16 - logZ");
    check(t[EX_SAMPLES] == 3 && near(lp[EX_SAMPLES], 0), "biased row: token 3 with logprob 0");
    check(is_one_of(t[2 * EX_SAMPLES], 2, 5, 9), "masked row: an allowed token");
    check(near(lp[2 * EX_SAMPLES], logit(10, t[2 * EX_SAMPLES]) - z2), "masked row: logprob over the allowed tokens");
    check(t[3 * EX_SAMPLES] == 14 && near(lp[3 * EX_SAMPLES], logit(10, 14) - z3), "penalised greedy row: token 14");
    check(t[4 * EX_SAMPLES] == 0 && isnan(lp[4 * EX_SAMPLES]), "all-masked row: token 0, logprob NaN");
    check(t[5 * EX_SAMPLES] == 14 || t[5 * EX_SAMPLES] == 15, "top-k 2 row: token 14 or 15");
  }
  check(near(b->log_z[0], z0) && near(b->log_z[2], z2) && near(b->log_z[3], z3), "log-normalisers");
}

/* Top-N lists: most likely first, padded, NaN for the bad row. */
static void check_ex_top(const ex_buffers *b) {
  const double z0 = log_z(10, 13, 15, -1, 0);
  for (int i = 0; i < TOP_N; i++) {
    check(b->top_tokens[i] == (uint32_t)(15 - i) && near(b->top_logprobs[i], logit(10, 15 - i) - z0),
          "greedy top-k row: top-N 15, 14, 13 with their logprobs");
    check(isnan(b->top_logprobs[4 * TOP_N + i]) && b->top_tokens[4 * TOP_N + i] == 0, "all-masked row: top-N NaN");
  }
  check(b->top_tokens[TOP_N] == 3, "biased row: top-1 is token 3");
  check(b->top_tokens[2 * TOP_N] == 9 && b->top_tokens[2 * TOP_N + 1] == 5 && b->top_tokens[2 * TOP_N + 2] == 2,
        "masked row: top-N 9, 5, 2");
  check(b->top_tokens[5 * TOP_N + 2] == 0 && isinf(b->top_logprobs[5 * TOP_N + 2]), "top-k 2 row: padded top-N");
  check(b->top_logprobs[5 * TOP_N] > b->top_logprobs[5 * TOP_N + 1], "top-N in decreasing order");
}

/* Bad input: the status, a message, and the outputs untouched. */
static void expect_untouched(const char *what, fs_context *ctx, fs_lm_head *head, const fs_sample_options *o,
                             const fs_sample_outputs *out, fs_status want) {
  const uint32_t sentinel = 0xDEADBEEFu;
  for (size_t i = 0; i < out->tokens_len; i++) out->tokens[i] = sentinel;
  expect(what, sample_ex(ctx, head, o, out), want);
  for (size_t i = 0; i < out->tokens_len; i++)
    if (out->tokens[i] != sentinel) { fprintf(stderr, "FAIL %s wrote tokens\n", what); failures++; break; }
}

/* Layout errors, checked by the ABI on every backend. */
static void check_ex_layout_errors(fs_context *ctx, fs_lm_head *head, ex_buffers *b) {
  fs_sample_outputs out = outputs_of(b);
  fs_sample_options o = options_all();
  expect("sample_ex NULL outputs", sample_ex(ctx, head, &o, NULL), FS_ERROR_NULL_POINTER);
  o.mask_len = EX_BATCH - 1;
  expect_untouched("mask of the wrong length", ctx, head, &o, &out, FS_ERROR_SHAPE);
  o = options_all();
  const size_t decreasing[EX_BATCH + 1] = {0, 1, 0, 1, 1, 1, 1};
  o.bias.offsets = decreasing;
  expect_untouched("bias offsets decrease", ctx, head, &o, &out, FS_ERROR_SHAPE);
  o = options_all();
  o.bias.len = 2;
  expect_untouched("bias offsets end before len", ctx, head, &o, &out, FS_ERROR_SHAPE);
  o = options_all();
  o.bias.tokens = NULL;
  expect_untouched("bias tokens NULL", ctx, head, &o, &out, FS_ERROR_NULL_POINTER);
  o = options_all();
  const uint32_t outside[1] = {VOCAB};
  o.penalty_counts.tokens = outside;
  expect_untouched("penalty token outside the vocabulary", ctx, head, &o, &out, FS_ERROR_PARAM);
  o = options_all();
  o.truncation_len = 1;
  expect_untouched("truncation of the wrong length", ctx, head, &o, &out, FS_ERROR_SHAPE);
  o = options_all();
  out.logprobs_len = 1;
  expect_untouched("logprobs of the wrong length", ctx, head, &o, &out, FS_ERROR_SHAPE);
  out = outputs_of(b);
  out.top_tokens = NULL;
  expect_untouched("top_n without top_tokens", ctx, head, &o, &out, FS_ERROR_NULL_POINTER);
}

/* Domain errors, checked by backends that offer the feature. */
static void check_ex_domain_errors(fs_context *ctx, fs_lm_head *head, ex_buffers *b) {
  fs_sample_outputs out = outputs_of(b);
  fs_sample_options o = options_all();
  fs_truncation t[EX_BATCH];
  memcpy(t, EX_TRUNCATION, sizeof t);
  o.truncation = t;
  t[1].top_k = 1025;
  expect_untouched("top_k above 1024", ctx, head, &o, &out, FS_ERROR_PARAM);
  t[1].top_k = 0, t[1].top_p = 0;
  expect_untouched("top_p 0", ctx, head, &o, &out, FS_ERROR_PARAM);
  t[1].top_p = 1.5f;
  expect_untouched("top_p above 1", ctx, head, &o, &out, FS_ERROR_PARAM);
  t[1].top_p = 1, t[1].min_p = -0.5f;
  expect_untouched("min_p negative", ctx, head, &o, &out, FS_ERROR_PARAM);
  o = options_all();
  fs_penalty_params p[EX_BATCH];
  memcpy(p, EX_PENALTIES, sizeof p);
  p[2].repetition = 0;
  o.penalties = p;
  expect_untouched("repetition penalty 0", ctx, head, &o, &out, FS_ERROR_PARAM);
  o = options_all();
  const size_t twice_offsets[EX_BATCH + 1] = {0, 0, 2, 2, 2, 2, 2};
  const uint32_t twice_tokens[2] = {3, 3};
  const float twice_values[2] = {1, 2};
  o.bias.offsets = twice_offsets, o.bias.tokens = twice_tokens, o.bias.values = twice_values, o.bias.len = 2;
  expect_untouched("bias token given twice", ctx, head, &o, &out, FS_ERROR_PARAM);
  o = options_all();
  uint32_t top_tokens[EX_BATCH * 21];
  float top_logprobs[EX_BATCH * 21];
  out.top_n = 21;
  out.top_tokens = top_tokens, out.top_tokens_len = EX_BATCH * 21;
  out.top_logprobs = top_logprobs, out.top_logprobs_len = EX_BATCH * 21;
  expect_untouched("top_n above 20", ctx, head, &o, &out, FS_ERROR_PARAM);
}

/* A backend without a feature refuses a call that asks for it. */
static void check_ex_refusals(fs_context *ctx, fs_lm_head *head, ex_buffers *b, uint32_t features) {
  fs_sample_outputs plain = outputs_of(b), with_top = outputs_of(b);
  plain.logprobs = NULL, plain.log_normalizer = NULL, plain.top_n = 0;
  fs_sample_options none = {0}, mask = {0}, truncation = {0};
  mask.mask = EX_MASK, mask.mask_len = EX_BATCH;
  truncation.truncation = EX_TRUNCATION, truncation.truncation_len = EX_BATCH;
  with_top.logprobs = NULL, with_top.log_normalizer = NULL;
  expect("sample_ex without features", sample_ex(ctx, head, &none, &plain), FS_OK);
  if (!(features & FS_FEATURE_CONSTRAINTS))
    expect_untouched("mask on a backend without constraints", ctx, head, &mask, &plain, FS_ERROR_UNSUPPORTED);
  if (!(features & FS_FEATURE_TRUNCATION))
    expect_untouched("truncation on a backend without it", ctx, head, &truncation, &plain, FS_ERROR_UNSUPPORTED);
  if (!(features & FS_FEATURE_TOP_LOGPROBS))
    expect_untouched("top-N on a backend without it", ctx, head, &none, &with_top, FS_ERROR_UNSUPPORTED);
}

static void check_sample_ex(fs_context *ctx, fs_lm_head *head) {
  for (int r = 0; r < EX_BATCH; r++) ex_hidden[r * DIM] = EX_A[r];
  uint32_t features = 0;
  expect("context_features", flashsampling_context_features(ctx, &features), FS_OK);
  printf("features 0x%x\n", features);
  ex_buffers b;
  check_ex_layout_errors(ctx, head, &b);
  check_ex_refusals(ctx, head, &b, features);
  if (features != ALL_FEATURES) return;
  fs_sample_options o = options_all();
  fs_sample_outputs out = outputs_of(&b);
  expect("sample_ex with every feature", sample_ex(ctx, head, &o, &out), FS_OK);
  check_ex_tokens(&b);
  check_ex_top(&b);
  check_ex_domain_errors(ctx, head, &b);
}

int main(int argc, char **argv) {
  if (flashsampling_version() !=
      FLASHSAMPLING_VERSION_MAJOR * 10000 + FLASHSAMPLING_VERSION_MINOR * 100 + FLASHSAMPLING_VERSION_PATCH) {
    fprintf(stderr, "FAIL header and library versions differ\n");
    return 1;
  }
  fs_context *ctx = NULL;
  fs_status st = flashsampling_context_create(backend_code(argc > 1 ? argv[1] : "auto"), &ctx);
  if (st == FS_ERROR_UNAVAILABLE) {
    printf("skip: %s\n", flashsampling_last_error());
    return 77;
  }
  expect("context_create", st, FS_OK);
  if (st != FS_OK) return 1;
  printf("backend %s\n", flashsampling_context_backend(ctx));

  /* W[t] = (t / VOCAB, 0, ...): a hidden state along +e0 makes token VOCAB-1 the argmax. */
  float w[VOCAB * DIM] = {0};
  for (int t = 0; t < VOCAB; t++) w[t * DIM] = (float)t / VOCAB;
  float h[BATCH * DIM] = {0};
  h[0] = 10.0f;             /* row 0: greedy, expects VOCAB-1 */
  h[DIM] = 1.0f;            /* row 1: sampled */
  h[2 * DIM] = NAN;         /* row 2: NaN logits, a row status and not an error */

  fs_lm_head *head = NULL;
  expect("lm_head_load", flashsampling_lm_head_load(ctx, w, sizeof w, FS_DTYPE_F32, DIM, 0, 0, &head), FS_OK);
  if (!head) return 1;

  fs_row_params rows[BATCH] = {{0.0f, 1, 0}, {1.0f, 2, 0}, {1.0f, 3, 0}};
  uint32_t tokens[BATCH * SAMPLES];
  uint8_t statuses[BATCH];
  expect("sample", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH, SAMPLES, tokens,
                                        BATCH * SAMPLES, statuses, BATCH),
         FS_OK);
  for (int s = 0; s < SAMPLES; s++) {
    if (tokens[s] != VOCAB - 1) { fprintf(stderr, "FAIL greedy row gave %u\n", tokens[s]); failures++; }
    if (tokens[SAMPLES + s] >= VOCAB) { fprintf(stderr, "FAIL token %u out of range\n", tokens[SAMPLES + s]); failures++; }
    if (tokens[2 * SAMPLES + s] != 0) { fprintf(stderr, "FAIL NaN row token %u\n", tokens[2 * SAMPLES + s]); failures++; }
  }
  if (statuses[0] != FS_ROW_OK || statuses[1] != FS_ROW_OK || statuses[2] != FS_ROW_NAN_LOGITS) {
    fprintf(stderr, "FAIL statuses %u %u %u\n", statuses[0], statuses[1], statuses[2]);
    failures++;
  }

  /* Bad input: each returns a status and a message. */
  expect("NULL out", flashsampling_context_create(FS_BACKEND_CPU, NULL), FS_ERROR_NULL_POINTER);
  fs_context *bad = NULL;
  expect("unknown backend code", flashsampling_context_create(99, &bad), FS_ERROR_PARAM);
  fs_lm_head *bad_head = NULL;
  expect("unknown dtype code", flashsampling_lm_head_load(ctx, w, sizeof w, 7, DIM, 0, 0, &bad_head), FS_ERROR_PARAM);
  expect("NULL weights", flashsampling_lm_head_load(ctx, NULL, sizeof w, FS_DTYPE_F32, DIM, 0, 0, &bad_head),
         FS_ERROR_NULL_POINTER);
  expect("weights not a multiple of dim",
         flashsampling_lm_head_load(ctx, w, sizeof w - 4, FS_DTYPE_F32, DIM, 0, 0, &bad_head), FS_ERROR_SHAPE);
  expect("shard outside vocabulary", flashsampling_lm_head_load(ctx, w, sizeof w, FS_DTYPE_F32, DIM, 8, 20, &bad_head),
         FS_ERROR_SHAPE);
  expect("NULL ctx", flashsampling_sample(NULL, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH, SAMPLES, tokens,
                                          BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_NULL_POINTER);
  expect("head passed as ctx", flashsampling_sample((fs_context *)head, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows,
                                                    BATCH, SAMPLES, tokens, BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_INVALID_HANDLE);
  expect("NULL tokens", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH, SAMPLES, NULL,
                                             BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_NULL_POINTER);
  expect("tokens too short", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH, SAMPLES,
                                                  tokens, BATCH * SAMPLES - 1, statuses, BATCH),
         FS_ERROR_SHAPE);
  expect("statuses too short", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH, SAMPLES,
                                                    tokens, BATCH * SAMPLES, statuses, BATCH - 1),
         FS_ERROR_SHAPE);
  expect("rows out of range", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH + 1, rows, BATCH + 1,
                                                   SAMPLES, tokens, BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_SHAPE);
  expect("unknown hidden dtype", flashsampling_sample(ctx, head, h, sizeof h, 42, BATCH, rows, BATCH, SAMPLES, tokens,
                                                      BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_PARAM);
  fs_row_params nan_rows[BATCH] = {{NAN, 1, 0}, {1.0f, 2, 0}, {1.0f, 3, 0}};
  expect("temperature NaN", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, nan_rows, BATCH, SAMPLES,
                                                 tokens, BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_PARAM);
  if (strcmp(flashsampling_context_backend(ctx), "cuda") != 0) {
    uint64_t workspace[BATCH * SAMPLES];
    expect("CUDA device-pointer path on another backend",
           flashsampling_sample_cuda(ctx, head, h, FS_DTYPE_F32, BATCH, rows, SAMPLES, workspace, tokens, statuses, NULL),
           FS_ERROR_UNSUPPORTED);
    size_t ws_bytes = 0;
    expect("CUDA workspace size on another backend",
           flashsampling_cuda_workspace_bytes(ctx, head, FS_DTYPE_F32, BATCH, SAMPLES, NULL, true, 0, &ws_bytes),
           FS_ERROR_UNSUPPORTED);
    fs_cuda_outputs dev_out = {tokens, statuses, NULL, NULL, 0, NULL, NULL};
    expect("CUDA device-pointer path with options on another backend",
           flashsampling_sample_cuda_ex(ctx, head, h, FS_DTYPE_F32, BATCH, rows, SAMPLES, NULL, workspace,
                                        sizeof workspace, &dev_out, NULL),
           FS_ERROR_UNSUPPORTED);
    fs_lm_head *borrowed = NULL;
    expect("borrowing device weights on another backend",
           flashsampling_lm_head_borrow_cuda(ctx, w, FS_DTYPE_F32, VOCAB, DIM, 0, 0, &borrowed), FS_ERROR_UNSUPPORTED);
  }
  check_sample_ex(ctx, head);
  if (flashsampling_context_backend(NULL) != NULL) { fprintf(stderr, "FAIL backend name of NULL\n"); failures++; }

  expect("lm_head_destroy", flashsampling_lm_head_destroy(head), FS_OK);
  expect("lm_head double destroy", flashsampling_lm_head_destroy(head), FS_ERROR_INVALID_HANDLE);
  expect("sample with destroyed head", flashsampling_sample(ctx, head, h, sizeof h, FS_DTYPE_F32, BATCH, rows, BATCH,
                                                            SAMPLES, tokens, BATCH * SAMPLES, statuses, BATCH),
         FS_ERROR_INVALID_HANDLE);
  expect("context_destroy", flashsampling_context_destroy(ctx), FS_OK);
  expect("context double destroy", flashsampling_context_destroy(ctx), FS_ERROR_INVALID_HANDLE);
  expect("destroy NULL", flashsampling_context_destroy(NULL), FS_ERROR_NULL_POINTER);

  if (failures) fprintf(stderr, "%d failures\n", failures);
  else printf("all checks passed\n");
  return failures ? 1 : 0;
}

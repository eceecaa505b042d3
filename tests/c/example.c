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
    fs_lm_head *borrowed = NULL;
    expect("borrowing device weights on another backend",
           flashsampling_lm_head_borrow_cuda(ctx, w, FS_DTYPE_F32, VOCAB, DIM, 0, 0, &borrowed), FS_ERROR_UNSUPPORTED);
  }
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

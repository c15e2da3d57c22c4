/* pair_encoding.h: [CLS] A [SEP] B [SEP] encodings with the second sequence truncated into overlapping windows
 * (HF tokenizers' truncation="only_second" with stride and return_overflowing_tokens), padded on the right. */
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "text/tokenizer.h"

typedef struct qb_pair_windows {
    int64_t count; /* number of windows (>= 1) */
    int64_t step;  /* window k covers B tokens [k * step, min(k * step + room, n_b)) */
    int64_t room;  /* B tokens per window */
} qb_pair_windows;

/* Plans the windows of n_b second-sequence tokens next to n_a first-sequence tokens in max_len; fails like HF
 * when the first sequence leaves no room or stride is not below the room. */
int qb_pair_plan(int64_t n_a, int64_t n_b, int max_len, int stride, qb_pair_windows *w, qb_err *err);
/* Writes window k of (a[0, n_a), b) into rows of max_len: ids, token types, attention mask, offsets (2 per token,
 * (0,0) for special and padding tokens) and sequence ids (0, 1, or -1 for special and padding tokens).
 * Returns the number of tokens before padding. */
int qb_pair_fill(const qb_tokenizer *t, const qb_tokens *a, int64_t n_a, const qb_tokens *b, const qb_pair_windows *w,
                 int64_t k, int max_len, int32_t *ids, int32_t *types, int32_t *mask, int32_t *offsets, int8_t *seq);

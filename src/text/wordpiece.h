/* wordpiece.h: BERT pre-tokenisation (split on whitespace, punctuation split off) and greedy longest-match WordPiece. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "text/bert_normalizer.h"
#include "text/vocab.h"

typedef struct qb_wordpiece {
    const qb_vocab *vocab;
    const char *prefix;           /* continuation prefix, "##" */
    size_t prefix_len;
    int max_input_chars_per_word; /* longer words become unk_id */
    int32_t unk_id;
} qb_wordpiece;

/* Token output: ids and [start, end) character offsets into the original text. */
typedef struct qb_tokens {
    int32_t *ids, *start, *end;
    int64_t n, cap;
    /* scratch reused between calls */
    int32_t *cps;
    int64_t cps_cap, n_cps;
    qb_norm_buf norm;
    char *word;
    int32_t *word_pos;
    size_t word_cap;
} qb_tokens;

/* Appends one token to out. */
int qb_tokens_push(qb_tokens *out, int32_t id, int32_t start, int32_t end, qb_err *err);
/* Splits normalised code points into words and appends their WordPiece tokens to out. */
int qb_wordpiece_tokenize(const qb_wordpiece *wp, const qb_norm_buf *norm, qb_tokens *out, qb_err *err);
/* Frees the token arrays and scratch. */
void qb_tokens_free(qb_tokens *t);

/* bert_normalizer.h: BERT's text normalisation (HF tokenizers' BertNormalizer), code point by code point,
 * keeping for every output code point the index of the input code point it came from. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"

typedef struct qb_bert_norm_opts {
    bool clean_text;           /* drop NUL, U+FFFD and controls (Cc/Cf/Co except \t\n\r); whitespace becomes ' ' */
    bool handle_chinese_chars; /* put spaces around CJK ideographs */
    bool strip_accents;        /* NFD, then drop nonspacing marks (Mn) */
    bool lowercase;            /* full lower-case mapping, per code point */
} qb_bert_norm_opts;

typedef struct qb_norm_buf {
    int32_t *cp;  /* normalised code points */
    int32_t *src; /* index of the input code point each one came from */
    int64_t n, cap;
} qb_norm_buf;

/* Normalises input code points [begin, end) and appends the result to out (src indexes refer to cps). */
int qb_bert_normalize(const qb_bert_norm_opts *o, const int32_t *cps, int64_t begin, int64_t end, qb_norm_buf *out, qb_err *err);
/* Frees the buffer's arrays. */
void qb_norm_buf_free(qb_norm_buf *b);
/* Unicode White_Space (what Rust's char::is_whitespace tests). */
bool qb_bert_is_whitespace(int32_t cp);
/* ASCII punctuation or a Unicode P* category: split off as a token of its own. */
bool qb_bert_is_punctuation(int32_t cp);
/* A CJK Unified Ideograph in the ranges BERT splits. */
bool qb_bert_is_cjk(int32_t cp);

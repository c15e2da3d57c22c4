/* vocab.h: a WordPiece vocabulary, token string to id, with an open-addressing hash table. */
#pragma once

/* Largest token id accepted from a vocabulary file (vocabularies are far smaller; this bounds the id table). */
#define QB_VOCAB_MAX_ID (1 << 24)
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct qb_vocab {
    char **tokens;       /* id -> NUL-terminated token (NULL for ids no token names) */
    int32_t n;           /* number of ids */
    uint32_t *slots;     /* hash slots: id + 1, 0 = empty */
    uint64_t mask;       /* slot count - 1 */
    size_t max_token_bytes;
} qb_vocab;

/* Loads vocab.txt: one token per line, id = line number from 0; a later duplicate line wins the lookup. */
int qb_vocab_load_txt(qb_vocab *v, const char *path, qb_err *err);
/* Builds a vocabulary from n (token, id) pairs; ids must lie in [0, n_ids). */
int qb_vocab_build(qb_vocab *v, const char *const *tokens, const int32_t *ids, int32_t n, int32_t n_ids, qb_err *err);
/* Returns the id of the token given by len bytes, or -1. */
int32_t qb_vocab_find(const qb_vocab *v, const char *s, size_t len);
/* Frees the vocabulary. */
void qb_vocab_free(qb_vocab *v);

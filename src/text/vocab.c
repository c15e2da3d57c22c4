/* vocab.c: see vocab.h. */
#include "text/vocab.h"

#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "text/utf8.h"

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int32_t qb_vocab_find(const qb_vocab *v, const char *s, size_t len) {
    if (len > v->max_token_bytes) return -1;
    uint64_t i = hash_bytes(s, len) & v->mask;
    for (;;) {
        uint32_t slot = v->slots[i];
        if (slot == 0) return -1;
        const char *t = v->tokens[slot - 1];
        if (strncmp(t, s, len) == 0 && t[len] == '\0') return (int32_t)(slot - 1);
        i = (i + 1) & v->mask;
    }
}

static void insert(qb_vocab *v, int32_t id) {
    const char *t = v->tokens[id];
    size_t len = strlen(t);
    if (len > v->max_token_bytes) v->max_token_bytes = len;
    uint64_t i = hash_bytes(t, len) & v->mask;
    for (;;) {
        uint32_t slot = v->slots[i];
        if (slot == 0) { v->slots[i] = (uint32_t)id + 1; return; }
        if (strcmp(v->tokens[slot - 1], t) == 0) { v->slots[i] = (uint32_t)id + 1; return; }
        i = (i + 1) & v->mask;
    }
}

static int alloc_table(qb_vocab *v, int32_t n_ids, qb_err *err) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n_ids + 1) cap *= 2;
    v->tokens = calloc((size_t)n_ids + 1, sizeof *v->tokens);
    v->slots = calloc(cap, sizeof *v->slots);
    v->mask = cap - 1;
    v->n = n_ids;
    v->max_token_bytes = 0;
    if (!v->tokens || !v->slots) {
        qb_vocab_free(v);
        return qb_errorf(err, "out of memory for a vocabulary of %d tokens", (int)n_ids);
    }
    return 0;
}

int qb_vocab_build(qb_vocab *v, const char *const *tokens, const int32_t *ids, int32_t n, int32_t n_ids, qb_err *err) {
    memset(v, 0, sizeof *v);
    if (alloc_table(v, n_ids, err)) return -1;
    for (int32_t k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= n_ids) {
            qb_vocab_free(v);
            return qb_errorf(err, "token \"%s\" has id %d outside [0, %d)", tokens[k], (int)ids[k], (int)n_ids);
        }
        free(v->tokens[ids[k]]);
        v->tokens[ids[k]] = strdup(tokens[k]);
        if (!v->tokens[ids[k]]) { qb_vocab_free(v); return qb_errorf(err, "out of memory"); }
    }
    for (int32_t k = 0; k < n; k++) insert(v, ids[k]);
    return 0;
}

int qb_vocab_load_txt(qb_vocab *v, const char *path, qb_err *err) {
    memset(v, 0, sizeof *v);
    char *data;
    size_t len;
    if (qb_read_file(path, &data, &len, err)) return -1;
    int64_t bad = qb_utf8_invalid_offset(data, len);
    if (bad >= 0) {
        int64_t line = 1;
        for (int64_t i = 0; i < bad; i++) line += data[i] == '\n';
        free(data);
        return qb_errorf(err, "%s: line %ld: invalid UTF-8 at byte offset %ld", path, (long)line, (long)bad);
    }
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    if (len > 0 && data[len - 1] != '\n') lines++;
    if (lines > (int64_t)QB_VOCAB_MAX_ID + 1) {
        free(data);
        return qb_errorf(err, "%s: %lld tokens (at most %d)", path, (long long)lines, QB_VOCAB_MAX_ID + 1);
    }
    int32_t n_ids = (int32_t)lines;
    if (n_ids == 0) { free(data); return qb_errorf(err, "%s: empty vocabulary", path); }
    if (alloc_table(v, n_ids, err)) { free(data); return qb_err_context(err, "%s", path); }
    char *p = data;
    for (int32_t id = 0; id < n_ids; id++) {
        char *nl = memchr(p, '\n', len - (size_t)(p - data));
        char *end = nl ? nl : data + len;
        size_t tl = (size_t)(end - p);
        if (tl > 0 && p[tl - 1] == '\r') tl--;
        v->tokens[id] = strndup(p, tl);
        if (!v->tokens[id]) { free(data); qb_vocab_free(v); return qb_errorf(err, "%s: out of memory", path); }
        insert(v, id);
        p = nl ? nl + 1 : end;
    }
    free(data);
    return 0;
}

void qb_vocab_free(qb_vocab *v) {
    if (v->tokens) {
        for (int32_t i = 0; i < v->n; i++) free(v->tokens[i]);
    }
    free(v->tokens);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

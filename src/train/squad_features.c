/* squad_features.c: see squad_features.h. */
#include "train/squad_features.h"

#include <stdlib.h>
#include <string.h>

#include "text/pair_encoding.h"
#include "text/pystr.h"
#include "text/utf8.h"

static int reserve(qb_squad_features *f, int64_t need, qb_err *err) {
    if (need <= f->cap) return 0;
    int64_t cap = f->cap ? 2 * f->cap : 256;
    while (cap < need) cap *= 2;
    size_t L = (size_t)f->max_len;
#define GROW(field, per)                                                        \
    do {                                                                        \
        void *p = realloc(f->field, (size_t)cap * (per) * sizeof *f->field);    \
        if (!p) return qb_errorf(err, "out of memory for %ld features", (long)cap); \
        f->field = p;                                                           \
    } while (0)
    GROW(input_ids, L);
    GROW(token_type_ids, L);
    GROW(attention_mask, L);
    GROW(offsets, 2 * L);
    GROW(sequence_ids, L);
    GROW(start_positions, 1);
    GROW(end_positions, 1);
    GROW(example, 1);
#undef GROW
    f->cap = cap;
    return 0;
}

/* run_qa's start/end loops, literally, over one padded row. */
static void positions(const qb_squad_example *e, int L, const int32_t *ids, const int32_t *offs, const int8_t *seq,
                      int32_t cls_id, int32_t *start, int32_t *end) {
    int cls = 0;
    while (cls < L && ids[cls] != cls_id) cls++;
    if (cls == L) cls = 0;
    *start = *end = cls;
    if (e->n_answers == 0) return;
    int32_t start_char = e->answers[0].start, end_char = start_char + e->answers[0].len;
    int ts = 0, te = L - 1;
    while (ts < L && seq[ts] != 1) ts++;
    while (te >= 0 && seq[te] != 1) te--;
    if (ts == L) return;
    if (!(offs[2 * ts] <= start_char && offs[2 * te + 1] >= end_char)) return;
    while (ts < L && offs[2 * ts] <= start_char) ts++;
    *start = ts - 1;
    while (te >= 0 && offs[2 * te + 1] >= end_char) te--;
    *end = te + 1;
}

int qb_squad_features_build(const qb_tokenizer *tok, const qb_squad_set *set, const int64_t *idx, int64_t n_idx,
                            const qb_squad_feature_opts *o, qb_squad_features *out, qb_err *err) {
    if (out->n == 0 && out->cap == 0) out->max_len = o->max_seq_length;
    if (out->max_len != o->max_seq_length)
        return qb_errorf(err, "features of max_seq_length %d cannot be appended to %d", o->max_seq_length, out->max_len);
    if (!idx) n_idx = set->n;
    qb_tokens q = {0}, c = {0};
    int64_t ctx_done = -1;
    int rc = 0;
    int L = o->max_seq_length;
    for (int64_t k = 0; k < n_idx && !rc; k++) {
        int64_t ei = idx ? idx[k] : k;
        const qb_squad_example *e = &set->ex[ei];
        if (e->context != ctx_done) {
            const char *ctx = set->contexts[e->context];
            if (qb_tokenize(tok, ctx, strlen(ctx), &c, err)) { rc = qb_err_context(err, "context of question id %s", e->id); break; }
            ctx_done = e->context;
        }
        const char *qs = e->question;
        size_t ql = strlen(qs);
        while (ql > 0) { /* str.lstrip() */
            int32_t cp;
            int step = qb_utf8_next(qs, ql, &cp);
            if (step < 0 || !qb_py_isspace(cp)) break;
            qs += step;
            ql -= (size_t)step;
        }
        if (qb_tokenize(tok, qs, ql, &q, err)) { rc = qb_err_context(err, "question id %s", e->id); break; }
        int64_t n_q = q.n;
        if (o->max_query_length > 0 && n_q > o->max_query_length) n_q = o->max_query_length;
        qb_pair_windows w;
        if (qb_pair_plan(n_q, c.n, L, o->doc_stride, &w, err)) { rc = qb_err_context(err, "question id %s", e->id); break; }
        if (reserve(out, out->n + w.count, err)) { rc = -1; break; }
        for (int64_t wi = 0; wi < w.count; wi++) {
            int64_t r = out->n++;
            size_t base = (size_t)r * (size_t)L;
            qb_pair_fill(tok, &q, n_q, &c, &w, wi, L, out->input_ids + base, out->token_type_ids + base,
                         out->attention_mask + base, out->offsets + 2 * base, out->sequence_ids + base);
            positions(e, L, out->input_ids + base, out->offsets + 2 * base, out->sequence_ids + base, tok->cls_id,
                      &out->start_positions[r], &out->end_positions[r]);
            out->example[r] = ei;
        }
    }
    qb_tokens_free(&q);
    qb_tokens_free(&c);
    return rc ? -1 : 0;
}

void qb_squad_features_free(qb_squad_features *f) {
    free(f->input_ids);
    free(f->token_type_ids);
    free(f->attention_mask);
    free(f->offsets);
    free(f->sequence_ids);
    free(f->start_positions);
    free(f->end_positions);
    free(f->example);
    memset(f, 0, sizeof *f);
}

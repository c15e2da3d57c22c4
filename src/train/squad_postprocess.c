/* squad_postprocess.c: see squad_postprocess.h. */
#include "train/squad_postprocess.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "text/utf8.h"

typedef struct cand {
    int32_t s, e; /* character offsets in the context */
    float score, start_logit, end_logit;
    int64_t order; /* insertion order: equal scores keep it, as Python's stable sort does */
} cand;

/* Indices of the k largest values, largest first (np.argsort(x)[-1:-k-1:-1]; ties: larger index first). */
static int top_k(const float *x, int n, int k, int *idx) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int pos = m;
        while (pos > 0 && !(x[idx[pos - 1]] > x[i])) pos--; /* later index wins ties */
        if (pos >= k) continue;
        if (m < k) m++;
        for (int j = m - 1; j > pos; j--) idx[j] = idx[j - 1];
        idx[pos] = i;
    }
    return m;
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static char *substr_chars(const char *ctx, int32_t s, int32_t e) {
    size_t len = strlen(ctx);
    size_t b0 = qb_utf8_byte_offset(ctx, len, s);
    size_t b1 = e > s ? qb_utf8_byte_offset(ctx, len, e) : b0;
    if (b1 < b0) b1 = b0;
    return strndup(ctx + b0, b1 - b0);
}

static int one_example(const qb_squad_set *set, const qb_squad_features *f, const float *sl_all, const float *el_all,
                       const qb_squad_postprocess_opts *o, int64_t f0, int64_t f1, cand **buf, int64_t *buf_cap,
                       qb_squad_prediction *out, qb_err *err) {
    int L = f->max_len, k = o->n_best_size;
    int *si = malloc((size_t)k * 2 * sizeof *si);
    if (!si) return qb_errorf(err, "out of memory");
    int *ei = si + k;
    int64_t n = 0;
    bool have_null = false;
    cand null = {0};
    for (int64_t fi = f0; fi < f1; fi++) {
        const float *sl = sl_all + fi * L, *el = el_all + fi * L;
        const int32_t *offs = f->offsets + 2 * fi * L;
        const int8_t *seq = f->sequence_ids + fi * L;
        float null_score = sl[0] + el[0];
        if (!have_null || null.score > null_score) {
            null = (cand){.s = 0, .e = 0, .score = null_score, .start_logit = sl[0], .end_logit = el[0]};
            have_null = true;
        }
        int ns = top_k(sl, L, k, si), ne = top_k(el, L, k, ei);
        for (int a = 0; a < ns; a++) {
            for (int b = 0; b < ne; b++) {
                int s = si[a], e = ei[b];
                if (seq[s] != 1 || seq[e] != 1) continue;
                if (e < s || e - s + 1 > o->max_answer_length) continue;
                if (n == *buf_cap) {
                    int64_t cap = *buf_cap ? 2 * *buf_cap : 1024;
                    cand *nb = realloc(*buf, (size_t)cap * sizeof *nb);
                    if (!nb) { free(si); return qb_errorf(err, "out of memory"); }
                    *buf = nb;
                    *buf_cap = cap;
                }
                (*buf)[n] = (cand){.s = offs[2 * s], .e = offs[2 * e + 1], .score = sl[s] + el[e], .start_logit = sl[s],
                                   .end_logit = el[e], .order = n};
                n++;
            }
        }
    }
    free(si);
    if (n + 2 > *buf_cap) {
        cand *nb = realloc(*buf, (size_t)(n + 2) * sizeof *nb);
        if (!nb) return qb_errorf(err, "out of memory");
        *buf = nb;
        *buf_cap = n + 2;
    }
    cand *c = *buf;
    if (o->version_2 && have_null) {
        null.order = n;
        c[n++] = null;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_cand);
    if (n > k) n = k;
    if (o->version_2 && have_null) {
        bool any = false;
        for (int64_t i = 0; i < n; i++) any |= c[i].s == 0 && c[i].e == 0;
        if (!any) c[n++] = null;
    }
    const char *ctx = set->contexts[set->ex[out->example].context];
    out->nbest = calloc((size_t)n + 1, sizeof *out->nbest);
    if (!out->nbest) return qb_errorf(err, "out of memory");
    double *scores = malloc(((size_t)n + 1) * sizeof *scores);
    if (!scores) return qb_errorf(err, "out of memory");
    int32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        char *t = substr_chars(ctx, c[i].s, c[i].e);
        if (!t) { free(scores); return qb_errorf(err, "out of memory"); }
        out->nbest[m] = (qb_squad_nbest){.text = t, .start_logit = c[i].start_logit, .end_logit = c[i].end_logit};
        scores[m++] = c[i].score;
    }
    if (m == 0 || (m == 1 && out->nbest[0].text[0] == '\0')) {
        memmove(out->nbest + 1, out->nbest, (size_t)m * sizeof *out->nbest);
        memmove(scores + 1, scores, (size_t)m * sizeof *scores);
        out->nbest[0] = (qb_squad_nbest){.text = strdup("empty")};
        scores[0] = 0.0;
        m++;
        if (!out->nbest[0].text) { free(scores); return qb_errorf(err, "out of memory"); }
    }
    out->n_nbest = m;
    double mx = scores[0], sum = 0.0;
    for (int32_t i = 1; i < m; i++) if (scores[i] > mx) mx = scores[i];
    for (int32_t i = 0; i < m; i++) sum += (scores[i] = exp(scores[i] - mx));
    for (int32_t i = 0; i < m; i++) out->nbest[i].probability = scores[i] / sum;
    free(scores);
    const char *answer = out->nbest[0].text;
    if (o->version_2) {
        int32_t i = 0;
        while (i < m - 1 && out->nbest[i].text[0] == '\0') i++;
        out->score_diff = null.score - out->nbest[i].start_logit - out->nbest[i].end_logit;
        answer = out->score_diff > o->null_score_diff_threshold ? "" : out->nbest[i].text;
    }
    out->text = strdup(answer);
    return out->text ? 0 : qb_errorf(err, "out of memory");
}

int qb_squad_postprocess(const qb_squad_set *set, const qb_squad_features *f, const float *start_logits,
                         const float *end_logits, const qb_squad_postprocess_opts *o, qb_squad_predictions *out,
                         qb_err *err) {
    memset(out, 0, sizeof *out);
    out->version_2 = o->version_2;
    if (o->n_best_size <= 0 || o->max_answer_length <= 0) return qb_errorf(err, "n_best_size and max_answer_length must be positive");
    /* examples in order of first appearance; their features, wherever they are */
    int64_t *first = malloc((size_t)(set->n + 1) * sizeof *first);
    int64_t *order = malloc((size_t)(f->n + 1) * sizeof *order);
    int64_t *start = calloc((size_t)set->n + 2, sizeof *start);
    out->p = calloc((size_t)f->n + 1, sizeof *out->p);
    if (!first || !order || !start || !out->p) {
        free(first); free(order); free(start);
        return qb_errorf(err, "out of memory");
    }
    for (int64_t i = 0; i < set->n; i++) first[i] = -1;
    for (int64_t i = 0; i < f->n; i++) {
        int64_t e = f->example[i];
        if (e < 0 || e >= set->n) { free(first); free(order); free(start); return qb_errorf(err, "feature %ld: example %ld outside the set", (long)i, (long)e); }
        if (first[e] < 0) { first[e] = out->n; out->p[out->n++].example = e; }
        start[first[e] + 1]++;
    }
    for (int64_t j = 0; j < out->n; j++) start[j + 1] += start[j];
    int64_t *fill = calloc((size_t)out->n + 1, sizeof *fill);
    if (!fill) { free(first); free(order); free(start); return qb_errorf(err, "out of memory"); }
    for (int64_t i = 0; i < f->n; i++) {
        int64_t j = first[f->example[i]];
        order[start[j] + fill[j]++] = i;
    }
    free(fill);
    /* one example's features need not be contiguous: gather their logits rows */
    cand *buf = NULL;
    int64_t buf_cap = 0;
    int rc = 0;
    int L = f->max_len;
    qb_squad_features view = *f;
    float *sl = NULL, *el = NULL;
    int32_t *offs = NULL;
    int8_t *seq = NULL;
    for (int64_t j = 0; j < out->n && !rc; j++) {
        int64_t nf = start[j + 1] - start[j];
        bool contiguous = true;
        for (int64_t q = 1; q < nf; q++) contiguous &= order[start[j] + q] == order[start[j]] + q;
        if (contiguous) {
            int64_t f0 = order[start[j]];
            rc = one_example(set, f, start_logits, end_logits, o, f0, f0 + nf, &buf, &buf_cap, &out->p[j], err);
            continue;
        }
        free(sl); free(el); free(offs); free(seq);
        sl = malloc((size_t)(nf * L) * sizeof *sl);
        el = malloc((size_t)(nf * L) * sizeof *el);
        offs = malloc((size_t)(2 * nf * L) * sizeof *offs);
        seq = malloc((size_t)(nf * L) * sizeof *seq);
        if (!sl || !el || !offs || !seq) { rc = qb_errorf(err, "out of memory"); break; }
        for (int64_t q = 0; q < nf; q++) {
            int64_t r = order[start[j] + q];
            memcpy(sl + q * L, start_logits + r * L, (size_t)L * sizeof *sl);
            memcpy(el + q * L, end_logits + r * L, (size_t)L * sizeof *el);
            memcpy(offs + 2 * q * L, f->offsets + 2 * r * L, (size_t)(2 * L) * sizeof *offs);
            memcpy(seq + q * L, f->sequence_ids + r * L, (size_t)L * sizeof *seq);
        }
        view.offsets = offs;
        view.sequence_ids = seq;
        rc = one_example(set, &view, sl, el, o, 0, nf, &buf, &buf_cap, &out->p[j], err);
    }
    free(sl); free(el); free(offs); free(seq);
    free(buf);
    free(first);
    free(order);
    free(start);
    if (rc) qb_squad_predictions_free(out);
    return rc;
}

static int dump(json_t *obj, const char *path, qb_err *err) {
    if (!obj) return qb_errorf(err, "%s: out of memory", path);
    char *s = json_dumps(obj, JSON_INDENT(4) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17));
    json_decref(obj);
    if (!s) return qb_errorf(err, "%s: cannot encode JSON", path);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return qb_errorf(err, "%s: out of memory", path); }
    t[n] = '\n';
    t[n + 1] = '\0';
    int rc = qb_write_file_atomic(path, t, n + 1, err);
    free(t);
    return rc;
}

int qb_squad_predictions_write(const qb_squad_set *set, const qb_squad_predictions *p, const char *dir,
                               const char *prefix, qb_err *err) {
    if (qb_mkdir_p(dir, err)) return -1;
    json_t *preds = json_object(), *nbest = json_object(), *odds = json_object();
    if (!preds || !nbest || !odds) { json_decref(preds); json_decref(nbest); json_decref(odds); return qb_errorf(err, "out of memory"); }
    int bad = 0;
    for (int64_t i = 0; i < p->n; i++) {
        const qb_squad_prediction *x = &p->p[i];
        const char *id = set->ex[x->example].id;
        bad |= json_object_set_new(preds, id, json_string(x->text));
        json_t *list = json_array();
        for (int32_t k = 0; k < x->n_nbest; k++) {
            json_t *e = json_pack("{s:f, s:f, s:s, s:f}", "start_logit", (double)x->nbest[k].start_logit, "end_logit",
                                  (double)x->nbest[k].end_logit, "text", x->nbest[k].text, "probability",
                                  x->nbest[k].probability);
            bad |= !e || json_array_append_new(list, e);
        }
        bad |= !list || json_object_set_new(nbest, id, list);
        if (p->version_2) bad |= json_object_set_new(odds, id, json_real((double)x->score_diff));
    }
    if (bad) { json_decref(preds); json_decref(nbest); json_decref(odds); return qb_errorf(err, "out of memory building JSON"); }
    char path[4096];
    const char *sep = prefix && prefix[0] ? "_" : "";
    const char *pre = prefix ? prefix : "";
    snprintf(path, sizeof path, "%s/%s%spredictions.json", dir, pre, sep);
    int rc = dump(preds, path, err);
    snprintf(path, sizeof path, "%s/%s%snbest_predictions.json", dir, pre, sep);
    if (rc) json_decref(nbest);
    else rc = dump(nbest, path, err);
    snprintf(path, sizeof path, "%s/%s%snull_odds.json", dir, pre, sep);
    if (rc || !p->version_2) json_decref(odds);
    else rc = dump(odds, path, err);
    return rc;
}

void qb_squad_predictions_free(qb_squad_predictions *p) {
    if (p->p) {
        for (int64_t i = 0; i < p->n; i++) {
            for (int32_t k = 0; k < p->p[i].n_nbest; k++) free(p->p[i].nbest[k].text);
            free(p->p[i].nbest);
            free(p->p[i].text);
        }
    }
    free(p->p);
    memset(p, 0, sizeof *p);
}

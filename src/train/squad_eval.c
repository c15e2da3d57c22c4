/* squad_eval.c: see squad_eval.h. */
#include "train/squad_eval.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "text/pystr.h"
#include "text/utf8.h"

/* A normalised answer: code points with tokens separated by single spaces. */
typedef struct norm_text {
    int32_t *cp;
    int64_t n;
    int64_t n_tokens;
} norm_text;

static bool is_ascii_punct(int32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

static bool is_article(const int32_t *w, int64_t n) {
    if (n == 1) return w[0] == 'a';
    if (n == 2) return w[0] == 'a' && w[1] == 'n';
    return n == 3 && w[0] == 't' && w[1] == 'h' && w[2] == 'e';
}

/* lower -> remove_punc -> remove_articles -> white_space_fix, as normalize_answer composes them. */
static int normalize(const char *s, norm_text *out, qb_err *err) {
    memset(out, 0, sizeof *out);
    int32_t *cps = NULL;
    int64_t cap = 0, n = 0;
    if (qb_utf8_decode(s, strlen(s), &cps, &cap, &n, err)) { free(cps); return -1; }
    int32_t *low = malloc((size_t)(2 * n + 1) * sizeof *low);
    int32_t *res = malloc((size_t)(2 * n + 1) * sizeof *res);
    if (!low || !res) {
        free(cps); free(low); free(res);
        return qb_errorf(err, "out of memory normalising an answer");
    }
    int64_t m = qb_py_lower(cps, n, low), k = 0;
    for (int64_t i = 0; i < m; i++)
        if (!is_ascii_punct(low[i])) low[k++] = low[i];
    m = k;
    k = 0;
    for (int64_t i = 0; i < m;) { /* re.sub(r'\b(a|an|the)\b', ' '): a maximal run of \w that is an article */
        if (!qb_py_isword(low[i])) { res[k++] = low[i++]; continue; }
        int64_t j = i;
        while (j < m && qb_py_isword(low[j])) j++;
        if (is_article(low + i, j - i)) res[k++] = ' ';
        else while (i < j) res[k++] = low[i++];
        i = j;
    }
    m = k;
    k = 0;
    int64_t toks = 0;
    for (int64_t i = 0; i < m;) { /* ' '.join(text.split()) */
        if (qb_py_isspace(res[i])) { i++; continue; }
        if (toks > 0) low[k++] = ' ';
        while (i < m && !qb_py_isspace(res[i])) low[k++] = res[i++];
        toks++;
    }
    free(cps);
    free(res);
    out->cp = low;
    out->n = k;
    out->n_tokens = toks;
    return 0;
}

int qb_squad_normalize_answer(const char *s, char **out, qb_err *err) {
    norm_text t;
    if (normalize(s, &t, err)) return -1;
    *out = malloc((size_t)(4 * t.n + 1));
    if (!*out) { free(t.cp); return qb_errorf(err, "out of memory"); }
    size_t b = 0;
    for (int64_t i = 0; i < t.n; i++) b += (size_t)qb_utf8_encode(t.cp[i], *out + b);
    (*out)[b] = '\0';
    free(t.cp);
    return 0;
}

/* Token boundaries of a normalised text: starts[i], lens[i]. */
static int64_t split_tokens(const norm_text *t, int64_t *starts, int64_t *lens) {
    int64_t k = 0;
    for (int64_t i = 0; i < t->n;) {
        int64_t j = i;
        while (j < t->n && t->cp[j] != ' ') j++;
        starts[k] = i;
        lens[k] = j - i;
        k++;
        i = j + 1;
    }
    return k;
}

/* Size of the multiset intersection of the two token lists (Counter(a) & Counter(b)). */
static int64_t common_tokens(const norm_text *a, const norm_text *b) {
    if (a->n_tokens == 0 || b->n_tokens == 0) return 0;
    int64_t *as = malloc((size_t)a->n_tokens * 2 * sizeof *as), *bs = malloc((size_t)b->n_tokens * 3 * sizeof *bs);
    if (!as || !bs) { free(as); free(bs); return -1; }
    int64_t *al = as + a->n_tokens, *bl = bs + b->n_tokens, *used = bs + 2 * b->n_tokens;
    int64_t na = split_tokens(a, as, al), nb = split_tokens(b, bs, bl), same = 0;
    for (int64_t j = 0; j < nb; j++) used[j] = 0;
    for (int64_t i = 0; i < na; i++) {
        for (int64_t j = 0; j < nb; j++) {
            if (used[j] || al[i] != bl[j] || memcmp(a->cp + as[i], b->cp + bs[j], (size_t)al[i] * sizeof *a->cp) != 0) continue;
            used[j] = 1;
            same++;
            break;
        }
    }
    free(as);
    free(bs);
    return same;
}

int qb_squad_em_f1(const char *pred, const char *gold, bool v2, int *em, double *f1, qb_err *err) {
    norm_text p, g;
    if (normalize(pred, &p, err)) return -1;
    if (normalize(gold, &g, err)) { free(p.cp); return -1; }
    *em = p.n == g.n && memcmp(p.cp, g.cp, (size_t)p.n * sizeof *p.cp) == 0;
    int64_t same = common_tokens(&p, &g);
    int rc = 0;
    if (same < 0) rc = qb_errorf(err, "out of memory scoring an answer");
    else if (v2 && (p.n_tokens == 0 || g.n_tokens == 0)) *f1 = p.n_tokens == g.n_tokens; /* both empty: 1 */
    else if (same == 0) *f1 = 0.0;
    else {
        double precision = 1.0 * (double)same / (double)p.n_tokens;
        double recall = 1.0 * (double)same / (double)g.n_tokens;
        *f1 = (2 * precision * recall) / (precision + recall);
    }
    free(p.cp);
    free(g.cp);
    return rc;
}

int qb_squad_pred_texts_load(const char *path, const qb_squad_set *set, char ***texts, qb_err *err) {
    *texts = NULL;
    char *buf;
    size_t len;
    if (qb_read_file_maybe_gz(path, &buf, &len, err)) return -1;
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!root) return qb_errorf(err, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    if (!json_is_object(root)) { json_decref(root); return qb_errorf(err, "%s: expected an object {id: text}", path); }
    char **t = calloc((size_t)set->n + 1, sizeof *t);
    if (!t) { json_decref(root); return qb_errorf(err, "%s: out of memory", path); }
    for (int64_t i = 0; i < set->n; i++) {
        json_t *v = json_object_get(root, set->ex[i].id);
        if (!v) continue;
        if (!json_is_string(v)) {
            qb_squad_pred_texts_free(t, set->n);
            json_decref(root);
            return qb_errorf(err, "%s: key %s: expected a string", path, set->ex[i].id);
        }
        t[i] = strdup(json_string_value(v));
        if (!t[i]) { qb_squad_pred_texts_free(t, set->n); json_decref(root); return qb_errorf(err, "%s: out of memory", path); }
    }
    json_decref(root);
    *texts = t;
    return 0;
}

void qb_squad_pred_texts_free(char **texts, int64_t n) {
    if (!texts) return;
    for (int64_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

int qb_squad_evaluate_v1(const qb_squad_set *set, char *const *preds, qb_squad_scores *out, int *per_em, double *per_f1,
                         qb_err *err) {
    memset(out, 0, sizeof *out);
    double f1_sum = 0.0;
    int64_t em_sum = 0;
    for (int64_t i = 0; i < set->n; i++) {
        const qb_squad_example *e = &set->ex[i];
        if (per_em) per_em[i] = -1;
        if (per_f1) per_f1[i] = -1.0;
        if (!preds[i]) { out->n_missing++; continue; }
        int best_em = 0;
        double best_f1 = 0.0;
        for (int32_t a = 0; a < e->n_answers; a++) {
            int em;
            double f1;
            if (qb_squad_em_f1(preds[i], e->answers[a].text, false, &em, &f1, err))
                return qb_err_context(err, "question id %s", e->id);
            if (a == 0 || em > best_em) best_em = em;
            if (a == 0 || f1 > best_f1) best_f1 = f1;
        }
        em_sum += best_em;
        f1_sum += best_f1;
        if (per_em) per_em[i] = best_em;
        if (per_f1) per_f1[i] = best_f1;
    }
    out->total = set->n;
    if (set->n == 0) return qb_errorf(err, "no questions to evaluate");
    out->exact = 100.0 * (double)em_sum / (double)set->n;
    out->f1 = 100.0 * f1_sum / (double)set->n;
    return 0;
}

typedef struct na_order {
    double p;
    int64_t i;
} na_order;

static int cmp_na_order(const void *a, const void *b) {
    const na_order *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);  /* ties keep dataset order, as Python's stable sort */
}

/* evaluate-v2.0's find_best_thresh: answer questions in order of rising no-answer probability, starting from
 * "no answer everywhere"; the best total score and the probability where it was reached. */
static double find_best_thresh(const qb_squad_set *set, char *const *preds, const double *raw, const na_order *order,
                               double *thresh) {
    double cur = 0.0;
    for (int64_t i = 0; i < set->n; i++) cur += set->ex[i].n_answers == 0;
    double best = cur;
    *thresh = 0.0;
    for (int64_t k = 0; k < set->n; k++) {
        int64_t i = order[k].i;
        double diff = set->ex[i].n_answers > 0 ? raw[i] : (preds[i][0] ? -1.0 : 0.0);
        cur += diff;
        if (cur > best) {
            best = cur;
            *thresh = order[k].p;
        }
    }
    return 100.0 * best / (double)set->n;
}

int qb_squad_evaluate_v2(const qb_squad_set *set, char *const *preds, const double *na_probs, double na_prob_thresh,
                         qb_squad_scores *out, qb_err *err) {
    memset(out, 0, sizeof *out);
    double sum_em = 0, sum_f1 = 0, ha_em = 0, ha_f1 = 0, na_em = 0, na_f1 = 0;
    double *raw_em = NULL, *raw_f1 = NULL;
    na_order *order = NULL;
    if (na_probs && set->n > 0) {
        raw_em = malloc((size_t)set->n * sizeof *raw_em);
        raw_f1 = malloc((size_t)set->n * sizeof *raw_f1);
        order = malloc((size_t)set->n * sizeof *order);
        if (!raw_em || !raw_f1 || !order) {
            free(raw_em);
            free(raw_f1);
            free(order);
            return qb_errorf(err, "out of memory evaluating %lld questions", (long long)set->n);
        }
    }
    int rc = 0;
    for (int64_t i = 0; !rc && i < set->n; i++) {
        const qb_squad_example *e = &set->ex[i];
        if (!preds[i]) {
            rc = qb_errorf(err, "question id %s has no prediction (evaluate-v2.0 needs one for every question)", e->id);
            break;
        }
        bool has_ans = e->n_answers > 0;
        int best_em = 0;
        double best_f1 = 0.0;
        int n_gold = 0;
        for (int32_t a = 0; a <= e->n_answers; a++) {
            const char *gold = "";
            if (a < e->n_answers) {
                char *norm;
                if (qb_squad_normalize_answer(e->answers[a].text, &norm, err)) {
                    rc = qb_err_context(err, "question id %s", e->id);
                    break;
                }
                bool empty = norm[0] == '\0';
                free(norm);
                if (empty) continue;
                gold = e->answers[a].text;
            } else if (n_gold > 0) {
                break;
            }
            int em;
            double f1;
            if (qb_squad_em_f1(preds[i], gold, true, &em, &f1, err)) {
                rc = qb_err_context(err, "question id %s", e->id);
                break;
            }
            if (n_gold == 0 || em > best_em) best_em = em;
            if (n_gold == 0 || f1 > best_f1) best_f1 = f1;
            n_gold++;
        }
        if (rc) break;
        double em_v = best_em, f1_v = best_f1;
        if (raw_em) {
            raw_em[i] = best_em;
            raw_f1[i] = best_f1;
            order[i] = (na_order){na_probs[i], i};
        }
        if ((na_probs ? na_probs[i] : 0.0) > na_prob_thresh) em_v = f1_v = has_ans ? 0.0 : 1.0;
        sum_em += em_v;
        sum_f1 += f1_v;
        if (has_ans) { ha_em += em_v; ha_f1 += f1_v; out->has_ans_total++; }
        else { na_em += em_v; na_f1 += f1_v; out->no_ans_total++; }
    }
    if (!rc && raw_em) {
        qsort(order, (size_t)set->n, sizeof *order, cmp_na_order);
        out->best_exact = find_best_thresh(set, preds, raw_em, order, &out->best_exact_thresh);
        out->best_f1 = find_best_thresh(set, preds, raw_f1, order, &out->best_f1_thresh);
        out->has_best = true;
    }
    free(raw_em);
    free(raw_f1);
    free(order);
    if (rc) return -1;
    out->total = set->n;
    if (set->n == 0) return qb_errorf(err, "no questions to evaluate");
    out->exact = 100.0 * sum_em / (double)set->n;
    out->f1 = 100.0 * sum_f1 / (double)set->n;
    if (out->has_ans_total) {
        out->has_ans_exact = 100.0 * ha_em / (double)out->has_ans_total;
        out->has_ans_f1 = 100.0 * ha_f1 / (double)out->has_ans_total;
    }
    if (out->no_ans_total) {
        out->no_ans_exact = 100.0 * na_em / (double)out->no_ans_total;
        out->no_ans_f1 = 100.0 * na_f1 / (double)out->no_ans_total;
    }
    return 0;
}

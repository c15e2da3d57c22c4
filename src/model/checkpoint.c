/* checkpoint.c: see checkpoint.h. */
#include "model/checkpoint.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "model/safetensors.h"

#define BERT_PREFIX "bert."
#define LIST_SHOWN 8

/* A growing ", "-separated list of names; shows the first LIST_SHOWN and counts the rest. */
typedef struct name_list {
    char *s;
    size_t len, cap;
    int n;
} name_list;

static void list_add(name_list *l, const char *name) {
    l->n++;
    if (l->n > LIST_SHOWN) return;
    size_t need = l->len + strlen(name) + 3;
    if (need > l->cap) {
        size_t cap = need * 2;
        char *s = realloc(l->s, cap);
        if (!s) return;
        l->s = s;
        l->cap = cap;
    }
    l->len += (size_t)sprintf(l->s + l->len, "%s%s", l->len ? ", " : "", name);
}

/* The list as a malloc'd string ("a, b, ... (N more)"), NULL when empty; frees l. */
static char *list_take(name_list *l) {
    if (!l->n) {
        free(l->s);
        return NULL;
    }
    char more[48] = "";
    if (l->n > LIST_SHOWN) snprintf(more, sizeof more, " (%d more)", l->n - LIST_SHOWN);
    char *out = malloc(l->len + strlen(more) + 1);
    if (out) sprintf(out, "%s%s", l->s ? l->s : "", more);
    free(l->s);
    return out;
}

/* Finds a tensor of the file by HF name, trying the name without the "bert." prefix and legacy aliases. */
static int find_tensor(const qb_safetensors *f, const char *name) {
    char alt[300];
    const char *cands[4] = {name, NULL, NULL, NULL};
    int nc = 1;
    if (strncmp(name, BERT_PREFIX, strlen(BERT_PREFIX)) == 0) cands[nc++] = name + strlen(BERT_PREFIX);
    size_t len = strlen(name);
    if (len > 16 && strcmp(name + len - 16, "LayerNorm.weight") == 0) {
        snprintf(alt, sizeof alt, "%.*sLayerNorm.gamma", (int)(len - 16), name);
        cands[nc++] = alt;
    } else if (len > 14 && strcmp(name + len - 14, "LayerNorm.bias") == 0) {
        snprintf(alt, sizeof alt, "%.*sLayerNorm.beta", (int)(len - 14), name);
        cands[nc++] = alt;
    } else if (strcmp(name, "cls.predictions.bias") == 0) {
        cands[nc++] = "cls.predictions.decoder.bias";
    }
    for (int c = 0; c < nc; c++)
        for (int i = 0; i < f->n; i++)
            if (strcmp(f->tensors[i].name, cands[c]) == 0) return i;
    if (nc > 2 && strncmp(name, BERT_PREFIX, strlen(BERT_PREFIX)) == 0) { /* legacy alias without the prefix */
        const char *bare = alt + strlen(BERT_PREFIX);
        for (int i = 0; i < f->n; i++)
            if (strcmp(f->tensors[i].name, bare) == 0) return i;
    }
    return -1;
}

static bool is_encoder_param(const char *name) {
    return strncmp(name, "bert.embeddings.", 16) == 0 || strncmp(name, "bert.encoder.", 13) == 0;
}

/* Tensors a checkpoint may carry that the model knowingly does not read. */
static bool silently_unused(const qb_bert_model *m, const char *name) {
    size_t len = strlen(name);
    if (len >= 12 && strcmp(name + len - 12, "position_ids") == 0) return true;
    if (len >= 14 && strcmp(name + len - 14, "token_type_ids") == 0) return true;
    bool lm = m->head == QB_BERT_MASKED_LM || m->head == QB_BERT_LM_HEAD;
    return lm && (strcmp(name, "cls.predictions.decoder.weight") == 0 || strcmp(name, "cls.predictions.decoder.bias") == 0);
}

int qb_check_finite(const float *x, int64_t n, const char *file, const char *tensor, const char *what, qb_err *err) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return qb_errorf(err, "%s: tensor %s: element %lld is %s (%s must be finite)", file, tensor, (long long)i,
                             isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf", what);
    return 0;
}

static int load_param(qb_bert_model *m, const qb_safetensors *f, const qb_st_tensor *st, qb_tensor *p, qb_err *err) {
    bool same = st->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = st->shape[d] == p->shape[d];
    if (!same) {
        char a[128], b[128];
        return qb_errorf(err, "%s: tensor %s: shape %s but config wants %s", f->path, st->name,
                         qb_st_shape_str(st->ndim, st->shape, a, sizeof a), qb_st_shape_str(p->ndim, p->shape, b, sizeof b));
    }
    float *buf = malloc((size_t)(st->numel ? st->numel : 1) * sizeof(float));
    if (!buf) return qb_errorf(err, "%s: out of memory reading %s", f->path, st->name);
    int rc = qb_st_read_f32(f, st, buf, err);
    if (!rc) rc = qb_check_finite(buf, st->numel, f->path, st->name, "parameters", err);
    if (!rc && qb_copy_from_host(m->ctx, p, buf)) rc = qb_errorf(err, "%s: tensor %s: %s", f->path, st->name, m->ctx->err.msg);
    free(buf);
    return rc;
}

static int load_amax(const qb_safetensors *f, const qb_st_tensor *st, qb_quantizer *q, qb_err *err) {
    char sb[128];
    qb_st_shape_str(st->ndim, st->shape, sb, sizeof sb);
    bool per_row = qb_quantizer_per_channel(q) && st->numel == q->channels && st->ndim >= 1 && st->shape[0] == q->channels &&
                   (st->ndim == 1 || (st->ndim == 2 && st->shape[1] == 1));
    bool scalar = st->numel == 1 && st->ndim <= 1;
    if (!per_row && !scalar) {
        if (qb_quantizer_per_channel(q)) return qb_errorf(err, "%s: tensor %s: shape %s but the quantizer wants [] or [%ld, 1]", f->path, st->name, sb, (long)q->channels);
        return qb_errorf(err, "%s: tensor %s: shape %s but the quantizer is per tensor (wants [])", f->path, st->name, sb);
    }
    float *buf = malloc((size_t)st->numel * sizeof(float));
    if (!buf) return qb_errorf(err, "%s: out of memory reading %s", f->path, st->name);
    int rc = qb_st_read_f32(f, st, buf, err);
    for (int64_t i = 0; !rc && i < st->numel; i++)
        if (!(buf[i] >= 0.0f) || isinf(buf[i])) rc = qb_errorf(err, "%s: tensor %s: element %ld = %g is not a valid amax", f->path, st->name, (long)i, buf[i]);
    if (!rc) rc = qb_quantizer_set_amax(q, buf, st->numel, err);
    free(buf);
    return rc;
}

int qb_bert_load_safetensors(qb_bert_model *m, const char *path, qb_bert_load_report *rep, qb_err *err) {
    qb_bert_load_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    qb_safetensors f;
    if (qb_st_open(&f, path, err)) return -1;
    bool *used = calloc((size_t)f.n + 1, sizeof *used);
    name_list missing = {0}, fresh = {0}, unused = {0};
    int rc = used ? 0 : qb_errorf(err, "%s: out of memory", path);
    for (int i = 0; !rc && i < m->n_params; i++) {
        qb_tensor *p = m->params[i];
        int k = find_tensor(&f, p->name);
        if (k < 0) {
            if (is_encoder_param(p->name)) list_add(&missing, p->name);
            else list_add(&fresh, p->name);
            continue;
        }
        used[k] = true;
        if (!(rc = load_param(m, &f, &f.tensors[k], p, err))) rep->n_params++;
    }
    for (int i = 0; !rc && i < m->n_quant; i++) {
        char name[TENSOR_QUANTIZER_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s._amax", m->quant[i].tq.name);
        int k = find_tensor(&f, name);
        if (k < 0) continue;
        used[k] = true;
        if (!(rc = load_amax(&f, &f.tensors[k], &m->quant[i], err))) rep->n_amax++;
        snprintf(name, sizeof name, "%s._lsq_scale", m->quant[i].tq.name);
        k = rc ? -1 : find_tensor(&f, name);
        if (k < 0) continue;
        used[k] = true;
        float scale = 0.0f;
        if (f.tensors[k].numel != 1 || (rc = qb_st_read_f32(&f, &f.tensors[k], &scale, err)) || !(scale > 0.0f) || isinf(scale))
            rc = rc ? rc : qb_errorf(err, "%s: tensor %s: not one scale > 0", path, name);
        m->quant[i].tq.lsq_scale = scale;
    }
    if (!rc && missing.n) {
        char *names = list_take(&missing);
        rc = qb_errorf(err, "%s: %d tensor%s missing for %s: %s", path, missing.n, missing.n > 1 ? "s" : "", qb_bert_head_class(m->head),
                       names ? names : "?");
        free(names);
    } else {
        free(missing.s);
    }
    for (int i = 0; !rc && i < f.n; i++)
        if (!used[i] && !silently_unused(m, f.tensors[i].name)) list_add(&unused, f.tensors[i].name);
    rep->newly_initialized = list_take(&fresh);
    rep->unused = list_take(&unused);
    free(used);
    qb_st_close(&f);
    if (rc || rep == &local) qb_bert_load_report_free(rep);
    return rc;
}

void qb_bert_load_report_free(qb_bert_load_report *rep) {
    free(rep->newly_initialized);
    free(rep->unused);
    rep->newly_initialized = rep->unused = NULL;
}

int qb_bert_save_safetensors(const qb_bert_model *m, const char *path, qb_err *err) {
    int n_amax = 0;
    for (int i = 0; i < m->n_quant; i++) n_amax += (m->quant[i].tq.amax != NULL) + (m->quant[i].tq.desc.amax_mode == QUANT_AMAX_LSQ);
    int n = m->n_params + n_amax;
    qb_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    char (*names)[TENSOR_QUANTIZER_NAME_MAX + 16] = calloc((size_t)n + 1, sizeof *names);
    float **host = calloc((size_t)m->n_params + 1, sizeof *host);
    float *learned = calloc((size_t)(2 * m->n_quant) + 1, sizeof *learned); /* [n_quant][amax, scale] of learned ranges */
    int rc = e && names && host && learned ? 0 : qb_errorf(err, "%s: out of memory", path);
    bool strip = m->head == QB_BERT_MODEL;
    int k = 0;
    for (int i = 0; !rc && i < m->n_params; i++, k++) {
        const qb_tensor *p = m->params[i];
        const char *name = p->name;
        if (strip && strncmp(name, BERT_PREFIX, strlen(BERT_PREFIX)) == 0) name += strlen(BERT_PREFIX);
        snprintf(names[k], sizeof names[k], "%s", name);
        host[i] = malloc((size_t)qb_numel(p) * sizeof(float) + 1);
        if (!host[i]) rc = qb_errorf(err, "%s: out of memory", path);
        else if (qb_to_host(m->ctx, p, host[i])) rc = qb_errorf(err, "%s: %s", path, m->ctx->err.msg);
        e[k] = (qb_st_entry){.name = names[k], .ndim = p->ndim, .f32 = host[i]};
        for (int d = 0; d < p->ndim; d++) e[k].shape[d] = p->shape[d];
    }
    for (int i = 0; !rc && i < m->n_quant; i++) {
        const qb_quantizer *q = &m->quant[i];
        if (!q->tq.amax) continue;
        const char *name = q->tq.name;
        if (strip && strncmp(name, BERT_PREFIX, strlen(BERT_PREFIX)) == 0) name += strlen(BERT_PREFIX);
        snprintf(names[k], sizeof names[k], "%s._amax", name);
        e[k] = (qb_st_entry){.name = names[k], .ndim = q->tq.n_amax > 1 ? 2 : 0, .shape = {q->tq.n_amax, 1}, .f32 = q->tq.amax};
        /* a learned range is saved as the amax it stands for; LSQ's scale also as itself, for an exact resume */
        if (q->tq.learned_amax && tensor_quantizer_learned_range(m->ctx, &q->tq, &learned[2 * i], &learned[2 * i + 1]))
            rc = qb_errorf(err, "%s: %s: %s", path, q->tq.name, m->ctx->err.msg);
        if (q->tq.learned_amax) e[k].f32 = &learned[2 * i];
        k++;
        if (q->tq.desc.amax_mode == QUANT_AMAX_LSQ && q->tq.learned_amax) {
            snprintf(names[k], sizeof names[k], "%s._lsq_scale", name);
            e[k] = (qb_st_entry){.name = names[k], .ndim = 0, .f32 = &learned[2 * i + 1]};
            k++;
        }
    }
    if (!rc) rc = qb_st_write(path, e, k, err);
    for (int i = 0; host && i < m->n_params; i++) free(host[i]);
    free(learned);
    free(host);
    free(names);
    free(e);
    return rc;
}

int qb_bert_save_pretrained(const qb_bert_model *m, const char *dir, qb_err *err) {
    char path[4096];
    if (qb_mkdir_p(dir, err)) return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (qb_bert_config_save(&m->cfg, qb_bert_head_class(m->head), path, err)) return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return qb_bert_save_safetensors(m, path, err);
}

int qb_bert_from_pretrained(qb_bert_model *m, qb_ctx *ctx, const char *dir, qb_bert_head head, const qb_bert_options *opt,
                            qb_bert_load_report *rep, qb_err *err) {
    char path[4096];
    qb_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (qb_bert_config_load(path, &cfg, err)) return -1;
    if (qb_bert_init(m, ctx, &cfg, head, opt)) {
        qb_errorf(err, "%s", ctx->err.msg);
        qb_bert_free(m);
        return -1;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (qb_bert_load_safetensors(m, path, rep, err)) {
        qb_bert_free(m);
        return -1;
    }
    return 0;
}

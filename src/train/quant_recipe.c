/* quant_recipe.c: see quant_recipe.h. */
#include "train/quant_recipe.h"

#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

static const char *const calibrator_names[] = {"max", "percentile", "mse", "entropy"};

void qb_quant_recipe_default(qb_quant_recipe *r) {
    memset(r, 0, sizeof *r);
    r->calibrator = QB_CALIBRATOR_MAX;
    r->percentile = 99.99;
    r->wprec = 8;
    r->aprec = 8;
    r->histogram = HIST_MODELOPT;
}

int qb_calibrator_parse(const char *name, qb_calibrator *c, qb_err *err) {
    for (int k = 0; k < 4; k++)
        if (strcmp(name, calibrator_names[k]) == 0) {
            *c = (qb_calibrator)k;
            return 0;
        }
    return qb_errorf(err, "unknown calibrator '%s' (expected max, percentile, mse or entropy)", name);
}

const char *qb_calibrator_name(qb_calibrator c) { return c >= 0 && c <= QB_CALIBRATOR_ENTROPY ? calibrator_names[c] : "?"; }

hist_amax_method qb_calibrator_hist_method(qb_calibrator c) {
    switch (c) {
    case QB_CALIBRATOR_MSE: return HIST_AMAX_MSE;
    case QB_CALIBRATOR_ENTROPY: return HIST_AMAX_ENTROPY;
    default: return HIST_AMAX_PERCENTILE;
    }
}

/* Python's \d, \w, \s as POSIX bracket expressions (outside brackets); other text unchanged. */
static int translate_pattern(const char *py, char *out, size_t n, qb_err *err) {
    size_t k = 0;
    for (const char *p = py; *p; p++) {
        const char *rep = NULL;
        char one[3] = {p[0], 0, 0};
        if (p[0] == '\\' && p[1]) {
            rep = p[1] == 'd' ? "[0-9]" : p[1] == 'w' ? "[[:alnum:]_]" : p[1] == 's' ? "[[:space:]]" : NULL;
            if (!rep) {
                one[1] = p[1];
                rep = one;
            }
            p++;
        } else {
            rep = one;
        }
        size_t len = strlen(rep);
        if (k + len + 1 > n) return qb_errorf(err, "pattern '%s' too long", py);
        memcpy(out + k, rep, len);
        k += len;
    }
    out[k] = '\0';
    return 0;
}

#define PATTERN_TERMS_MAX 16384.0 /* terms after regcomp expands the repetitions (its memory grows with them) */
#define PATTERN_DEPTH_MAX 32

/* Refuses what makes regcomp's tree explode (glibc copies a repeated part once per repetition): a repetition of a
 * repetition ("a++", Python's "multiple repeat"; one lazy '?' after a repetition is taken, a search matches the same),
 * and nested counts that expand past PATTERN_TERMS_MAX terms. Malformed patterns are left to regcomp's message. */
static int check_expansion(const char *py, qb_err *err) {
    double size[PATTERN_DEPTH_MAX + 1] = {0}, last[PATTERN_DEPTH_MAX + 1] = {0}; /* per open group: its terms, its last element's */
    int depth = 0, repeated = 0;                                                 /* 1: last element repeated, 2: and lazy */
    for (const char *p = py; *p; p++) {
        double mult = 0.0;
        if (*p == '(') {
            if (depth == PATTERN_DEPTH_MAX) return qb_errorf(err, "pattern '%s': groups nested deeper than %d", py, PATTERN_DEPTH_MAX);
            depth++;
            size[depth] = last[depth] = 0.0;
            repeated = 0;
            continue;
        }
        if (*p == ')' && depth > 0) {
            double group = size[depth--];
            size[depth] += group;
            last[depth] = group;
            repeated = 0;
            continue;
        }
        if (*p == '|') {
            last[depth] = 0.0;
            repeated = 0;
            continue;
        }
        if (*p == '*' || *p == '+' || *p == '?') {
            mult = 2.0;
        } else if (*p == '{' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            double m = strtod(p + 1, &end), n = m;
            if (*end == ',') n = end[1] == '}' ? m + 1.0 : strtod(end + 1, &end);
            else if (*end != '}') n = -1.0;
            if (n >= 0.0 && *end == ',') end++;
            if (n >= 0.0 && *end == '}') {
                mult = (n > m ? n : m) + 1.0;
                p = end;
            }
        }
        if (mult > 0.0) {
            if (repeated == 1 && *p == '?') {
                repeated = 2;
                continue;
            }
            if (repeated) return qb_errorf(err, "pattern '%s': multiple repeat (a repetition of a repetition)", py);
            size[depth] += last[depth] * (mult - 1.0);
            last[depth] *= mult;
            repeated = 1;
        } else {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '[') { /* a bracket expression is one term; a ']' first in it is literal */
                const char *q = p + 1;
                if (*q == '^') q++;
                if (*q == ']') q++;
                while (*q && *q != ']') q++;
                if (*q) p = q;
            }
            size[depth] += 1.0;
            last[depth] = 1.0;
            repeated = 0;
        }
        double total = 0.0;
        for (int d = 0; d <= depth; d++) total += size[d];
        if (total > PATTERN_TERMS_MAX)
            return qb_errorf(err, "pattern '%s': its repetitions expand to more than %.0f terms", py, PATTERN_TERMS_MAX);
    }
    return 0;
}

static int compile(regex_t *re, const char *py, qb_err *err) {
    char posix[4 * QB_QUANT_PATTERN_MAX + 64];
    if (check_expansion(py, err) || translate_pattern(py, posix, sizeof posix, err)) return -1;
    int rc = regcomp(re, posix, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char why[128];
        regerror(rc, re, why, sizeof why);
        return qb_errorf(err, "pattern '%s': %s", py, why);
    }
    return 0;
}

/* Calls fn for each whitespace-separated word of list (prefixed by prefix); stops at the first error. */
typedef int (*pattern_fn)(void *user, const char *pattern, qb_err *err);

static int each_pattern(const char *list, const char *prefix, pattern_fn fn, void *user, qb_err *err) {
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t len = strcspn(p, " \t,");
        if (!len) break;
        char pat[2 * QB_QUANT_PATTERN_MAX];
        snprintf(pat, sizeof pat, "%s%.*s", prefix, (int)len, p);
        if (fn(user, pat, err)) return -1;
        p += len;
    }
    return 0;
}

static int check_pattern(void *user, const char *pattern, qb_err *err) {
    (void)user;
    regex_t re;
    if (compile(&re, pattern, err)) return -1;
    regfree(&re);
    return 0;
}

#define LAYER_PREFIX "layer.\\d+."

int qb_quant_recipe_validate(const qb_quant_recipe *r, qb_err *err) {
    if (r->calibrator < QB_CALIBRATOR_MAX || r->calibrator > QB_CALIBRATOR_ENTROPY) return qb_errorf(err, "quant.calibrator: unknown value");
    if (!(r->percentile > 0.0 && r->percentile <= 100.0)) return qb_errorf(err, "quant.percentile: %g outside (0, 100]", r->percentile);
    if (r->wprec < 2 || r->wprec > 16) return qb_errorf(err, "quant.wprec: %d bits outside [2, 16]", r->wprec);
    if (r->aprec < 2 || r->aprec > 16) return qb_errorf(err, "quant.aprec: %d bits outside [2, 16]", r->aprec);
    if (r->clip_gelu < 0.0) return qb_errorf(err, "quant.clip_gelu: %g must be >= 0 (0 = off)", r->clip_gelu);
    if (each_pattern(r->disable_keyword, "", check_pattern, NULL, err)) return qb_err_context(err, "quant.disable_keyword");
    if (each_pattern(r->disable_layer_module, LAYER_PREFIX, check_pattern, NULL, err)) return qb_err_context(err, "quant.disable_layer_module");
    if (each_pattern(r->enable_layer_module, LAYER_PREFIX, check_pattern, NULL, err)) return qb_err_context(err, "quant.enable_layer_module");
    return 0;
}

int qb_quant_recipe_defaults(const qb_quant_recipe *r, quant_defaults *d, qb_err *err) {
    if (qb_quant_recipe_validate(r, err)) return -1;
    quant_defaults_init(d);
    for (int k = 0; k < QUANT_KIND_COUNT; k++) {
        quant_desc q = d->kind[k];
        q.hist_semantics = r->histogram;
        q.percentile = r->percentile;
        if (k == QUANT_KIND_LINEAR_WEIGHT) {
            q.num_bits = r->wprec;
            q.axis = r->per_tensor ? -1 : 0;
            q.calib = CALIB_MAX;
        } else {
            q.num_bits = r->aprec;
            q.calib = r->calibrator == QB_CALIBRATOR_MAX ? CALIB_MAX : CALIB_HISTOGRAM;
            q.hist_method = qb_calibrator_hist_method(r->calibrator);
        }
        if (quant_defaults_set(d, (quant_kind)k, &q, err)) return -1;
    }
    return 0;
}

/* The module of a quantizer: its name without the last component. */
static void module_of(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s", name);
    char *dot = strrchr(out, '.');
    if (dot) *dot = '\0';
}

static bool is_linear_quantizer(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcmp(dot, "._input_quantizer") == 0 || strcmp(dot, "._weight_quantizer") == 0);
}

typedef struct set_state {
    qb_bert_model *m;
    bool disabled;
} set_state;

/* set_quantizer_by_name: a QuantLinear whose module name matches sets both its quantizers; a quantizer whose own
 * name matches is set. */
static int set_by_pattern(void *user, const char *pattern, qb_err *err) {
    set_state *s = user;
    regex_t re;
    if (compile(&re, pattern, err)) return -1;
    for (int i = 0; i < s->m->n_quant; i++) {
        tensor_quantizer *q = &s->m->quant[i].tq;
        char module[TENSOR_QUANTIZER_NAME_MAX];
        module_of(q->name, module, sizeof module);
        bool hit = regexec(&re, q->name, 0, NULL, 0) == 0 || (is_linear_quantizer(q->name) && regexec(&re, module, 0, NULL, 0) == 0);
        if (hit) q->disabled = s->disabled;
    }
    regfree(&re);
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void recalibrate_weights(qb_bert_model *m, FILE *log, qb_err *err) {
    int done = 0;
    for (int i = 0; i < m->n_quant && !err->failed; i++) {
        qb_quantizer *q = &m->quant[i];
        if (!ends_with(q->tq.name, "._weight_quantizer")) continue;
        const qb_tensor *w = NULL;
        for (int p = 0; p < m->n_params && !w; p++) {
            const char *pn = m->params[p]->name;
            size_t len = strlen(q->tq.name) - strlen("_weight_quantizer");
            if (strncmp(pn, q->tq.name, len) == 0 && strcmp(pn + len, "weight") == 0) w = m->params[p];
        }
        if (!w) {
            qb_errorf(err, "recalibrate weights: no weight for %s", q->tq.name);
            break;
        }
        bool per_row = qb_quantizer_per_channel(q) && q->channels == w->shape[0];
        calib_max cm;  /* max|W| per row (or over W) on W's device */
        calib_max_init(&cm, per_row ? 0 : -1);
        qb_quant_exec ex = qb_quant_exec_of(m->ctx);
        if (!calib_max_collect_on(&cm, &ex, w->data, w->ndim, w->shape, q->tq.name, err)) {
            if (cm.amax) qb_quantizer_set_amax(q, cm.amax, cm.n, err);
            else qb_errorf(err, "recalibrate weights: %s is empty", w->name);
        }
        calib_max_free(&cm);
        done++;
    }
    if (log && !err->failed) fprintf(log, "quant: recalibrated %d weight ranges from max|W|\n", done);
}

/* Sets the per-tensor amax of three quantizers to their largest (fuse3); skipped with a note when one has none. */
static void fuse3(qb_bert_model *m, const char *layer, const char *a, const char *b, const char *c, FILE *log, qb_err *err) {
    qb_quantizer *q[3];
    const char *names[3] = {a, b, c};
    float mx = 0.0f;
    for (int k = 0; k < 3; k++) {
        char name[TENSOR_QUANTIZER_NAME_MAX];
        snprintf(name, sizeof name, "%s.%s", layer, names[k]);
        q[k] = qb_bert_quantizer(m, name);
        if (!q[k] || !q[k]->tq.amax) {
            if (log) fprintf(log, "quant: fuse_qkv: %s has no amax, left as is\n", name);
            return;
        }
        if (q[k]->tq.n_amax != 1) {
            qb_errorf(err, "quant.fuse_qkv: %s is per channel", name);
            return;
        }
        mx = fmaxf(mx, q[k]->tq.amax[0]);
    }
    for (int k = 0; k < 3; k++) qb_quantizer_set_amax(q[k], &mx, 1, err);
}

static int clip_gelu(qb_bert_model *m, double maxval, qb_err *err) {
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        qb_quantizer *q = m->layers[i].out.in_q;
        if (!q->tq.amax)
            return qb_errorf(err, "quant.clip_gelu: %s has no amax (calibrate first)", q->tq.name);
        for (int64_t k = 0; k < q->tq.n_amax; k++) q->tq.amax[k] = fminf(q->tq.amax[k], (float)maxval);
    }
    return 0;
}

void qb_quant_count(const qb_bert_model *m, int *total, int *enabled, int *with_amax) {
    *total = m->n_quant;
    *enabled = *with_amax = 0;
    for (int i = 0; i < m->n_quant; i++) {
        *enabled += !m->quant[i].tq.disabled;
        *with_amax += m->quant[i].tq.amax != NULL;
    }
}

int qb_quant_configure(qb_bert_model *m, const qb_quant_recipe *r, FILE *log, qb_err *err) {
    if (qb_quant_recipe_validate(r, err)) return -1;
    for (int i = 0; i < m->n_quant; i++) m->quant[i].tq.disabled = false;
    if (r->disable)
        for (int i = 0; i < m->n_quant; i++) m->quant[i].tq.disabled = true;
    set_state off = {m, true}, on = {m, false};
    if (each_pattern(r->disable_keyword, "", set_by_pattern, &off, err)) return -1;
    if (each_pattern(r->disable_layer_module, LAYER_PREFIX, set_by_pattern, &off, err)) return -1;
    if (each_pattern(r->enable_layer_module, LAYER_PREFIX, set_by_pattern, &on, err)) return -1;
    if (r->recalibrate_weights) recalibrate_weights(m, log, err);
    for (int i = 0; r->fuse_qkv && i < m->cfg.num_hidden_layers && !err->failed; i++) {
        char layer[96];
        snprintf(layer, sizeof layer, "bert.encoder.layer.%d.attention.self", i);
        fuse3(m, layer, "matmul_q_input_quantizer", "matmul_k_input_quantizer", "matmul_v_input_quantizer", log, err);
        if (r->per_tensor)
            fuse3(m, layer, "query._weight_quantizer", "key._weight_quantizer", "value._weight_quantizer", log, err);
    }
    if (err->failed) return -1;
    if (r->clip_gelu > 0.0 && clip_gelu(m, r->clip_gelu, err)) return -1;
    if (log) {
        int total, enabled, with_amax;
        qb_quant_count(m, &total, &enabled, &with_amax);
        fprintf(log, "quant: %d quantizers, %d enabled, %d with a calibrated amax (%d-bit weights %s, %d-bit activations)\n", total,
                enabled, with_amax, r->wprec, r->per_tensor ? "per tensor" : "per row", r->aprec);
    }
    return 0;
}

int qb_learn_ranges_parse(const char *name, quant_amax_mode *mode, qb_err *err) {
    if (!strcmp(name, "none")) *mode = QUANT_AMAX_CALIBRATED;
    else if (!strcmp(name, "pact")) *mode = QUANT_AMAX_LEARNABLE;
    else if (!strcmp(name, "lsq")) *mode = QUANT_AMAX_LSQ;
    else return qb_errorf(err, "quant.learn_ranges: '%s' (expected none, pact or lsq)", name);
    return 0;
}

int qb_quant_learn_ranges(qb_bert_model *m, quant_amax_mode mode, int *count, qb_err *err) {
    *count = 0;
    if (mode != QUANT_AMAX_LEARNABLE && mode != QUANT_AMAX_LSQ) return 0;
    for (int i = 0; i < m->n_quant; i++) {
        tensor_quantizer *q = &m->quant[i].tq;
        if (q->disabled || !q->amax || q->n_amax != 1 || q->desc.axis != -1 || q->learned_amax) continue;
        q->desc.amax_mode = mode;
        if (tensor_quantizer_init_learn_amax(m->ctx, q)) return qb_errorf(err, "%s", m->ctx->err.msg);
        (*count)++;
    }
    return 0;
}

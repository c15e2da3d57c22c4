/* export_quantizers.c: see export_quantizers.h. */
#include "export/export_quantizers.h"

#include <string.h>

#define LIST_SHOWN 8

bool qb_export_quant_active(const qb_quantizer *q) { return q && !q->tq.disabled && q->tq.quant_on; }

int qb_export_check_quantizers(const qb_bert_model *m, qb_err *err) {
    char list[700] = "";
    int missing = 0;
    for (int i = 0; i < m->n_quant; i++) {
        const qb_quantizer *q = &m->quant[i];
        if (!qb_export_quant_active(q)) continue;
        if (q->tq.desc.amax_mode == QUANT_AMAX_LEARNABLE)
            return qb_errorf(err, "%s: a learned amax (PACT clip) is not exported", q->tq.name);
        if (q->tq.amax) continue;
        if (++missing <= LIST_SHOWN) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", q->tq.name);
        }
    }
    if (!missing) return 0;
    char more[48] = "";
    if (missing > LIST_SHOWN) snprintf(more, sizeof more, " (%d more)", missing - LIST_SHOWN);
    return qb_errorf(err, "%d enabled quantizer%s without an amax (calibrate first): %s%s", missing, missing > 1 ? "s" : "", list, more);
}

int qb_export_quant_path(const char *name, char *group, size_t group_n, char *stem, size_t stem_n, qb_err *err) {
    const char *dot = strrchr(name, '.');
    const char *suffix = "_quantizer";
    size_t ls = strlen(suffix);
    if (!dot) return qb_errorf(err, "quantizer name %s has no module", name);
    const char *attr = dot + 1;
    size_t la = strlen(attr);
    if (la <= ls || strcmp(attr + la - ls, suffix) != 0) return qb_errorf(err, "quantizer name %s does not end in %s", name, suffix);
    if (*attr == '_') attr++, la--;
    if ((size_t)(dot - name) >= group_n || la - ls >= stem_n) return qb_errorf(err, "quantizer name %s is too long", name);
    snprintf(stem, stem_n, "%.*s", (int)(la - ls), attr);
    qb_export_param_path(name, group, group_n);
    group[dot - name] = '\0';
    return 0;
}

void qb_export_param_path(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '.') *p = '/';
}

int qb_export_head_linears(const qb_bert_model *m, const qb_bert_linear **out) {
    const qb_bert_linear *all[] = {&m->pooler, &m->lm_transform, &m->lm_decoder, &m->classifier};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->w) out[n++] = all[i];
    return n;
}

/* Prints the group when its active quantizers (at most 4) disagree on amax; returns 1 when printed. */
static int report_group(const char *prefix, const char *what, qb_quantizer *const *qs, int n, FILE *log) {
    const qb_quantizer *first = NULL;
    bool unequal = false;
    int active = 0;
    for (int i = 0; i < n; i++) {
        const qb_quantizer *q = qs[i];
        if (!qb_export_quant_active(q) || !q->tq.amax || q->tq.n_amax != 1) continue;
        active++;
        if (!first) first = q;
        else if (q->tq.amax[0] != first->tq.amax[0]) unequal = true;
    }
    if (!unequal || active < 2) return 0;
    if (log) {
        fprintf(log, "%s: unequal scales on %s:", prefix, what);
        for (int i = 0; i < n; i++)
            if (qb_export_quant_active(qs[i]) && qs[i]->tq.amax)
                fprintf(log, " %s amax %.6g", qs[i]->tq.name, (double)qs[i]->tq.amax[0]);
        fprintf(log, "\n");
    }
    return 1;
}

int qb_export_report_unequal_scales(const qb_bert_model *m, const char *prefix, FILE *log) {
    int groups = 0;
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        qb_quantizer *q = m->layers[i].q;
        char what[96];
        /* the layer input feeds the fused QKV GEMM and the attention residual add (FasterTransformer asserts equality) */
        qb_quantizer *in[4] = {&q[QB_Q_QUERY_INPUT], &q[QB_Q_KEY_INPUT], &q[QB_Q_VALUE_INPUT], &q[QB_Q_ATTN_ADD_RESIDUAL]};
        snprintf(what, sizeof what, "layer %d input (fused QKV GEMM and attention residual)", i);
        groups += report_group(prefix, what, in, 4, log);
        /* the attention LayerNorm output feeds the FFN GEMM and the output residual add */
        qb_quantizer *mid[2] = {&q[QB_Q_INTER_INPUT], &q[QB_Q_OUT_ADD_RESIDUAL]};
        snprintf(what, sizeof what, "layer %d attention output (FFN GEMM and output residual)", i);
        groups += report_group(prefix, what, mid, 2, log);
    }
    return groups;
}

/* bert.c: parameters, quantizers, embeddings and encoder of the BERT model (see bert.h). */
#include "model/bert.h"
#include "quant/op_fused.h"
#include <float.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant/op_int8_gemm.h"

static const struct { const char *module, *quantizer; } layer_quant[QB_Q_PER_LAYER] = {
    [QB_Q_QUERY_INPUT] = {"attention.self.query", "_input_quantizer"},
    [QB_Q_QUERY_WEIGHT] = {"attention.self.query", "_weight_quantizer"},
    [QB_Q_KEY_INPUT] = {"attention.self.key", "_input_quantizer"},
    [QB_Q_KEY_WEIGHT] = {"attention.self.key", "_weight_quantizer"},
    [QB_Q_VALUE_INPUT] = {"attention.self.value", "_input_quantizer"},
    [QB_Q_VALUE_WEIGHT] = {"attention.self.value", "_weight_quantizer"},
    [QB_Q_MATMUL_Q] = {"attention.self", "matmul_q_input_quantizer"},
    [QB_Q_MATMUL_K] = {"attention.self", "matmul_k_input_quantizer"},
    [QB_Q_MATMUL_V] = {"attention.self", "matmul_v_input_quantizer"},
    [QB_Q_MATMUL_A] = {"attention.self", "matmul_a_input_quantizer"},
    [QB_Q_ATTN_OUT_INPUT] = {"attention.output.dense", "_input_quantizer"},
    [QB_Q_ATTN_OUT_WEIGHT] = {"attention.output.dense", "_weight_quantizer"},
    [QB_Q_ATTN_ADD_LOCAL] = {"attention.output", "add_local_input_quantizer"},
    [QB_Q_ATTN_ADD_RESIDUAL] = {"attention.output", "add_residual_input_quantizer"},
    [QB_Q_INTER_INPUT] = {"intermediate.dense", "_input_quantizer"},
    [QB_Q_INTER_WEIGHT] = {"intermediate.dense", "_weight_quantizer"},
    [QB_Q_OUT_INPUT] = {"output.dense", "_input_quantizer"},
    [QB_Q_OUT_WEIGHT] = {"output.dense", "_weight_quantizer"},
    [QB_Q_OUT_ADD_LOCAL] = {"output", "add_local_input_quantizer"},
    [QB_Q_OUT_ADD_RESIDUAL] = {"output", "add_residual_input_quantizer"},
};

const char *qb_bert_head_class(qb_bert_head head) {
    switch (head) {
    case QB_BERT_MODEL: return "BertModel";
    case QB_BERT_MASKED_LM: return "BertForMaskedLM";
    case QB_BERT_LM_HEAD: return "BertLMHeadModel";
    case QB_BERT_SEQUENCE_CLS: return "BertForSequenceClassification";
    case QB_BERT_NEXT_SENTENCE: return "BertForNextSentencePrediction";
    case QB_BERT_MULTIPLE_CHOICE: return "BertForMultipleChoice";
    case QB_BERT_TOKEN_CLS: return "BertForTokenClassification";
    case QB_BERT_QUESTION_ANSWERING: return "BertForQuestionAnswering";
    }
    return "?";
}

bool qb_bert_head_has_pooler(qb_bert_head head) {
    return head == QB_BERT_MODEL || head == QB_BERT_SEQUENCE_CLS || head == QB_BERT_NEXT_SENTENCE || head == QB_BERT_MULTIPLE_CHOICE;
}

/* ---- construction */

static qb_tensor *add_param(qb_bert_model *m, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static qb_tensor *add_param(qb_bert_model *m, int ndim, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {d0, d1};
    qb_tensor *t = qb_param_new(m->ctx, name, ndim, shape);
    if (!t) return NULL;
    m->params[m->n_params++] = t;
    return t;
}

/* Kind of a QDQBert quantizer from its attribute name. */
static quant_kind quant_kind_of(const char *quantizer) {
    if (strcmp(quantizer, "_weight_quantizer") == 0) return QUANT_KIND_LINEAR_WEIGHT;
    if (strncmp(quantizer, "matmul_", 7) == 0) return QUANT_KIND_MATMUL_INPUT;
    if (strncmp(quantizer, "add_", 4) == 0) return QUANT_KIND_RESIDUAL_INPUT;
    return QUANT_KIND_LINEAR_INPUT;
}

static qb_quantizer *add_quant(qb_bert_model *m, int64_t rows, const char *module, const char *quantizer) {
    qb_quantizer *q = &m->quant[m->n_quant++];
    char name[256];
    snprintf(name, sizeof name, "%s.%s", module, quantizer);
    if (!qb_ctx_failed(m->ctx)) qb_quantizer_init(q, name, &m->quant_desc.kind[quant_kind_of(quantizer)], rows, &m->ctx->err);
    return q;
}

/* A linear layer "prefix.weight"/"prefix.bias" [out, in]; quantized when `quant`. */
static void add_linear(qb_bert_model *m, qb_bert_linear *l, int64_t out, int64_t in, bool quant, const char *prefix) {
    l->w = add_param(m, 2, out, in, "%s.weight", prefix);
    l->b = add_param(m, 1, out, 0, "%s.bias", prefix);
    if (quant) {
        l->in_q = add_quant(m, 1, prefix, "_input_quantizer");
        l->w_q = add_quant(m, out, prefix, "_weight_quantizer");
    }
}

static void init_normal(qb_bert_model *m, qb_tensor *t) {
    if (t) qb_fill_normal(m->ctx, t, 0.0f, m->cfg.initializer_range);
}

static void init_const(qb_bert_model *m, qb_tensor *t, float v) {
    if (t) qb_fill(m->ctx, t, v);
}

int qb_bert_init(qb_bert_model *m, qb_ctx *ctx, const qb_bert_config *cfg, qb_bert_head head, const qb_bert_options *opt) {
    memset(m, 0, sizeof *m);
    m->ctx = ctx;
    m->cfg = *cfg;
    m->head = head;
    m->fuse = opt && opt->unfused ? 0u : QB_FUSE_ALL;
    m->weight_cache = !(opt && opt->no_weight_cache);
    if (opt && opt->quant) m->quant_desc = *opt->quant;
    else quant_defaults_init(&m->quant_desc);
    if (qb_bert_config_validate(cfg, "config", &ctx->err)) return -1;
    if (head == QB_BERT_LM_HEAD && !cfg->is_decoder)
        return qb_errorf(&ctx->err, "BertLMHeadModel needs is_decoder true in the config");
    bool qheads = opt && opt->quantize_heads;
    int L = cfg->num_hidden_layers;
    int64_t H = cfg->hidden_size, I = cfg->intermediate_size, V = cfg->vocab_size;
    m->params = calloc(16 * (size_t)L + 32, sizeof *m->params);
    m->quant = calloc((size_t)QB_Q_PER_LAYER * (size_t)L + 16, sizeof *m->quant);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->params || !m->quant || !m->layers) return qb_errorf(&ctx->err, "out of memory building the model");

    m->word_emb = add_param(m, 2, V, H, "bert.embeddings.word_embeddings.weight");
    m->pos_emb = add_param(m, 2, cfg->max_position_embeddings, H, "bert.embeddings.position_embeddings.weight");
    m->type_emb = add_param(m, 2, cfg->type_vocab_size, H, "bert.embeddings.token_type_embeddings.weight");
    m->emb_ln_w = add_param(m, 1, H, 0, "bert.embeddings.LayerNorm.weight");
    m->emb_ln_b = add_param(m, 1, H, 0, "bert.embeddings.LayerNorm.bias");
    for (int i = 0; i < L; i++) {
        qb_bert_layer *ly = &m->layers[i];
        char p[128];
        ly->q = &m->quant[m->n_quant];
        for (int k = 0; k < QB_Q_PER_LAYER; k++) {
            snprintf(p, sizeof p, "bert.encoder.layer.%d.%s", i, layer_quant[k].module);
            int64_t rows = k == QB_Q_INTER_WEIGHT ? I : H;
            add_quant(m, rows, p, layer_quant[k].quantizer);
        }
        struct { qb_bert_linear *l; int64_t out, in; const char *module; int qin; } lin[6] = {
            {&ly->query, H, H, "attention.self.query", QB_Q_QUERY_INPUT},
            {&ly->key, H, H, "attention.self.key", QB_Q_KEY_INPUT},
            {&ly->value, H, H, "attention.self.value", QB_Q_VALUE_INPUT},
            {&ly->attn_out, H, H, "attention.output.dense", QB_Q_ATTN_OUT_INPUT},
            {&ly->inter, I, H, "intermediate.dense", QB_Q_INTER_INPUT},
            {&ly->out, H, I, "output.dense", QB_Q_OUT_INPUT},
        };
        for (int k = 0; k < 6; k++) {
            snprintf(p, sizeof p, "bert.encoder.layer.%d.%s", i, lin[k].module);
            add_linear(m, lin[k].l, lin[k].out, lin[k].in, false, p);
            lin[k].l->in_q = &ly->q[lin[k].qin];
            lin[k].l->w_q = &ly->q[lin[k].qin + 1];
            if (k == 3) {
                ly->attn_ln_w = add_param(m, 1, H, 0, "bert.encoder.layer.%d.attention.output.LayerNorm.weight", i);
                ly->attn_ln_b = add_param(m, 1, H, 0, "bert.encoder.layer.%d.attention.output.LayerNorm.bias", i);
            }
        }
        ly->out_ln_w = add_param(m, 1, H, 0, "bert.encoder.layer.%d.output.LayerNorm.weight", i);
        ly->out_ln_b = add_param(m, 1, H, 0, "bert.encoder.layer.%d.output.LayerNorm.bias", i);
    }
    if (qb_bert_head_has_pooler(head)) add_linear(m, &m->pooler, H, H, qheads, "bert.pooler.dense");
    int C = cfg->num_labels;
    switch (head) {
    case QB_BERT_MODEL: break;
    case QB_BERT_MASKED_LM:
    case QB_BERT_LM_HEAD:
        add_linear(m, &m->lm_transform, H, H, qheads, "cls.predictions.transform.dense");
        m->lm_ln_w = add_param(m, 1, H, 0, "cls.predictions.transform.LayerNorm.weight");
        m->lm_ln_b = add_param(m, 1, H, 0, "cls.predictions.transform.LayerNorm.bias");
        m->lm_decoder.w = m->word_emb;
        m->lm_decoder.b = add_param(m, 1, V, 0, "cls.predictions.bias");
        if (qheads) {
            m->lm_decoder.in_q = add_quant(m, 1, "cls.predictions.decoder", "_input_quantizer");
            m->lm_decoder.w_q = add_quant(m, V, "cls.predictions.decoder", "_weight_quantizer");
        }
        break;
    case QB_BERT_NEXT_SENTENCE: add_linear(m, &m->classifier, 2, H, qheads, "cls.seq_relationship"); break;
    case QB_BERT_SEQUENCE_CLS:
    case QB_BERT_TOKEN_CLS: add_linear(m, &m->classifier, C, H, qheads, "classifier"); break;
    case QB_BERT_MULTIPLE_CHOICE: add_linear(m, &m->classifier, 1, H, qheads, "classifier"); break;
    case QB_BERT_QUESTION_ANSWERING: add_linear(m, &m->classifier, 2, H, qheads, "qa_outputs"); break;
    }
    if (qb_ctx_failed(ctx)) return -1;

    /* transformers' _init_weights: Linear/Embedding ~ N(0, initializer_range), padding row 0, LayerNorm 1/0, biases 0 */
    for (int i = 0; i < m->n_params; i++) {
        qb_tensor *t = m->params[i];
        const char *dot = strrchr(t->name, '.');
        bool is_ln = strstr(t->name, "LayerNorm.") != NULL;
        if (is_ln) init_const(m, t, strcmp(dot, ".weight") == 0 ? 1.0f : 0.0f);
        else if (t->ndim == 2) init_normal(m, t);
        else init_const(m, t, 0.0f);
    }
    if (!qb_ctx_failed(ctx) && cfg->pad_token_id >= 0 && cfg->pad_token_id < cfg->vocab_size) {  /* padding row 0 */
        qb_tensor row = qb_view_rows(m->word_emb, cfg->pad_token_id, 1);
        qb_fill(ctx, &row, 0.0f);
    }
    if (!qb_ctx_failed(ctx)) qb_params_pack(ctx);  /* one parameter and one gradient buffer */
    qb_bert_linear *heads[] = {&m->pooler, &m->lm_transform, &m->lm_decoder, &m->classifier};
    for (int i = 0; i < L && !qb_ctx_failed(ctx); i++) {
        qb_bert_layer *ly = &m->layers[i];
        qb_bert_linear *lin[6] = {&ly->query, &ly->key, &ly->value, &ly->attn_out, &ly->inter, &ly->out};
        for (int k = 0; k < 6 && !qb_ctx_failed(ctx); k++) qb_weight_cache_add(&m->wcache, lin[k]->w, &lin[k]->w_q->tq, &ctx->err);
    }
    for (int k = 0; k < 4 && !qb_ctx_failed(ctx); k++)
        if (heads[k]->w && heads[k]->w_q) qb_weight_cache_add(&m->wcache, heads[k]->w, &heads[k]->w_q->tq, &ctx->err);
    return qb_ctx_failed(ctx) ? -1 : 0;
}

void qb_bert_free(qb_bert_model *m) {
    qb_weight_cache_free(&m->wcache);
    for (int i = 0; m->quant && i < m->n_quant; i++) qb_quantizer_free(&m->quant[i]);
    free(m->quant);
    free(m->params);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* ---- quantizers */

qb_quantizer *qb_bert_quantizer(qb_bert_model *m, const char *name) {
    for (int i = 0; i < m->n_quant; i++)
        if (strcmp(m->quant[i].tq.name, name) == 0) return &m->quant[i];
    return NULL;
}

int qb_bert_quant_enable(qb_bert_model *m, const char *pattern, bool on) {
    int n = 0;
    for (int i = 0; i < m->n_quant; i++)
        if (fnmatch(pattern, m->quant[i].tq.name, 0) == 0) {
            m->quant[i].tq.disabled = !on;
            n++;
        }
    return n;
}

qb_tensor *qb_bert_quantize(qb_bert_model *m, qb_quantizer *q, qb_tensor *x) {
    if (!q || !x) return x;
    return qb_quantizer_apply(m->ctx, q, x);
}

/* True when q fake-quantizes with fixed host amax values into int8 codes (on, not calibrating, amax loaded, not
 * learned), per tensor unless per_row: then its output can feed the INT8 GEMM (quant.int8_gemm). */
static bool int8_ready(const qb_quantizer *q, bool per_row) {
    if (!q) return false;
    const tensor_quantizer *t = &q->tq;
    return !t->disabled && t->quant_on && !t->calib_on && t->amax && (per_row || t->n_amax == 1) &&
           t->desc.amax_mode != QUANT_AMAX_LEARNABLE && t->desc.amax_mode != QUANT_AMAX_LSQ && qb_int8_gemm_supported(&t->desc);
}

/* True when l runs on int8 codes: quant.int8_gemm on and both of its quantizers allow it. */
static bool int8_linear(const qb_bert_model *m, const qb_bert_linear *l) {
    return m->int8_gemm && int8_ready(l->in_q, false) && int8_ready(l->w_q, true);
}

/* l's weight through its weight quantizer: from the weight cache where it holds it, else fake-quantized here. */
static qb_tensor *linear_weight(qb_bert_model *m, const qb_bert_linear *l) {
    qb_tensor *wq = m->weight_cache && l->w_q ? qb_weight_cache_apply(m->ctx, &m->wcache, l->w, &l->w_q->tq) : NULL;
    return wq || qb_ctx_failed(m->ctx) ? wq : qb_bert_quantize(m, l->w_q, l->w);
}

/* y = xq @ Wq^T + b for an input already through the layer's input quantizer, Wq from the weight cache where it holds
 * the weight (quant.weight_cache), else fake-quantized here; on int8 codes when both quantizers allow it and
 * quant.int8_gemm is on. */
static qb_tensor *linear_quantized_input(qb_bert_model *m, const qb_bert_linear *l, qb_tensor *xq) {
    qb_tensor *wq = linear_weight(m, l);
    if (int8_linear(m, l)) {
        const tensor_quantizer *x = &l->in_q->tq, *w = &l->w_q->tq;
        return qb_linear_int8(m->ctx, xq, x->amax, &x->desc, wq, w->amax, w->n_amax, &w->desc, l->b);
    }
    return qb_linear(m->ctx, xq, wq, l->b);
}

/* a @ op(b) for inputs through the per-tensor quantizers qa and qb: on int8 codes when they allow it. */
static qb_tensor *matmul_quantized(qb_bert_model *m, qb_tensor *a, const qb_quantizer *qa, qb_tensor *b, const qb_quantizer *qb,
                                   bool trans_b) {
    if (m->int8_gemm && int8_ready(qa, false) && int8_ready(qb, false))
        return qb_matmul_int8(m->ctx, a, qa->tq.amax[0], &qa->tq.desc, b, qb->tq.amax[0], &qb->tq.desc, trans_b);
    return qb_matmul(m->ctx, a, b, false, trans_b);
}

/* Under precision bf16 a recorded linear (or matmul, for its left operand) can keep only its input's bf16 copy for the
 * backward: t, a GEMM input that the layer reads nowhere else (not `keep`; the fake quantizers', dropout's and
 * GELU/ReLU's backward do not read their outputs), is marked for that before its GEMMs (mark) and its fp32 memory handed
 * back after them (!mark). The INT8 GEMM's backward reads fp32 inputs: nothing is marked with it on. */
static void gemm_input_only(qb_bert_model *m, qb_tensor *t, const qb_tensor *keep, bool mark) {
    if (!t || t == keep || m->int8_gemm || m->keep_f32_inputs) return;
    if (mark) qb_mark_gemm_input(t);
    else qb_release_f32(m->ctx, t);
}

qb_tensor *qb_bert_linear_forward(qb_bert_model *m, const qb_bert_linear *l, qb_tensor *x) {
    return linear_quantized_input(m, l, qb_bert_quantize(m, l->in_q, x));
}

/* True when b would give the same output as a on any input: both plain fake quantizers (on, not calibrating, fixed
 * amax) with the same numerics and amax. Then one fake-quantized tensor serves both (the query, key and value inputs
 * see the same hidden states). */
static bool same_quantization(const qb_quantizer *a, const qb_quantizer *b) {
    if (!a || !b) return false;
    const tensor_quantizer *x = &a->tq, *y = &b->tq;
    if (x->disabled || y->disabled || !x->quant_on || !y->quant_on || x->calib_on || y->calib_on) return false;
    if (!x->amax || !y->amax || x->n_amax != y->n_amax || x->desc.amax_mode == QUANT_AMAX_LEARNABLE ||
        y->desc.amax_mode == QUANT_AMAX_LEARNABLE || x->desc.amax_mode == QUANT_AMAX_LSQ || y->desc.amax_mode == QUANT_AMAX_LSQ)
        return false;
    if (x->desc.num_bits != y->desc.num_bits || x->desc.axis != y->desc.axis || x->desc.is_unsigned != y->desc.is_unsigned ||
        x->desc.narrow_range != y->desc.narrow_range)
        return false;
    return memcmp(x->amax, y->amax, (size_t)x->n_amax * sizeof(float)) == 0;
}

/* True when q can run inside a fused op: fusion on, q a plain per-tensor fake quantizer (on, not calibrating, a fixed
 * signed amax); *spec then describes it. */
static bool fusable(const qb_bert_model *m, unsigned what, const qb_quantizer *q, qb_fq_spec *spec) {
    if (!(m->fuse & what) || !q) return false;
    const tensor_quantizer *t = &q->tq;
    if (t->disabled || !t->quant_on || t->calib_on || !t->amax || t->n_amax != 1 || t->desc.is_unsigned ||
        t->desc.amax_mode == QUANT_AMAX_LEARNABLE || t->desc.amax_mode == QUANT_AMAX_LSQ)
        return false;
    *spec = (qb_fq_spec){.amax = t->amax[0], .desc = &t->desc};
    return true;
}

/* layernorm(qa(a) + qr(r)) and, when next_q is given, next_q(y) into *yq: fused when all of them allow, else the
 * unfused ops (*yq NULL: the caller quantizes y itself). */
static qb_tensor *residual_layernorm(qb_bert_model *m, qb_quantizer *qa, qb_quantizer *qr, qb_tensor *a, qb_tensor *r, qb_tensor *gamma,
                                     qb_tensor *beta, qb_quantizer *next_q, qb_tensor **yq) {
    qb_fq_spec fa, fr, fy;
    *yq = NULL;
    if (fusable(m, QB_FUSE_RESIDUAL, qa, &fa) && fusable(m, QB_FUSE_RESIDUAL, qr, &fr))
        return qb_add_fq_layernorm(m->ctx, a, r, gamma, beta, m->cfg.layer_norm_eps, &fa, &fr,
                                   fusable(m, QB_FUSE_LN_OUT, next_q, &fy) ? &fy : NULL, yq);
    qb_tensor *s = qb_add(m->ctx, qb_bert_quantize(m, qa, a), qb_bert_quantize(m, qr, r));
    return qb_layernorm(m->ctx, s, gamma, beta, m->cfg.layer_norm_eps);
}

/* ---- forward */

static qb_tensor *activation(qb_ctx *ctx, qb_bert_act act, qb_tensor *x) {
    switch (act) {
    case QB_ACT_GELU: return qb_gelu(ctx, x);
    case QB_ACT_GELU_TANH: return qb_gelu_tanh(ctx, x);
    case QB_ACT_RELU: return qb_relu(ctx, x);
    }
    return NULL;
}

static qb_tensor *embeddings(qb_bert_model *m, const qb_bert_batch *b) {
    qb_ctx *ctx = m->ctx;
    int64_t B = b->batch, S = b->seq, bs[2] = {B, S};
    qb_tensor *x = qb_embedding_padded(ctx, m->word_emb, b->input_ids, 2, bs, m->cfg.pad_token_id);
    if (b->token_type_ids) {
        x = qb_add(ctx, x, qb_embedding(ctx, m->type_emb, b->token_type_ids, 2, bs));
    } else {
        static const int32_t zero = 0;
        int64_t one = 1;
        x = qb_add(ctx, x, qb_embedding(ctx, m->type_emb, &zero, 1, &one));
    }
    if (b->position_ids) {
        x = qb_add(ctx, x, qb_embedding(ctx, m->pos_emb, b->position_ids, 2, bs));
    } else {
        int32_t *pos = qb_meta_alloc(ctx, (size_t)S * sizeof(int32_t));
        if (!pos) return NULL;
        for (int64_t s = 0; s < S; s++) pos[s] = (int32_t)s;
        x = qb_add(ctx, x, qb_embedding(ctx, m->pos_emb, pos, 1, &S));
    }
    x = qb_layernorm(ctx, x, m->emb_ln_w, m->emb_ln_b, m->cfg.layer_norm_eps);
    return qb_dropout(ctx, x, m->cfg.hidden_dropout_prob);
}

/* Additive attention mask: [B, 1, 1, S] from padding, [B, 1, S, S] when causal; NULL when nothing is masked. */
static qb_tensor *attention_mask(qb_bert_model *m, const qb_bert_batch *b, bool *failed) {
    qb_ctx *ctx = m->ctx;
    int64_t B = b->batch, S = b->seq;
    bool causal = m->cfg.is_decoder;
    bool any = causal && S > 1;
    for (int64_t i = 0; b->attention_mask && !any && i < B * S; i++) any = b->attention_mask[i] == 0;
    *failed = false;
    if (!any) return NULL;
    int64_t rows = causal ? S : 1, shape[4] = {B, 1, rows, S};
    float *host = qb_meta_alloc(ctx, (size_t)(B * rows * S) * sizeof(float));
    if (!host) return *failed = true, NULL;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t s = 0; s < S; s++) {
                bool keep = (!b->attention_mask || b->attention_mask[bi * S + s] != 0) && (!causal || s <= r);
                host[(bi * rows + r) * S + s] = keep ? 0.0f : -FLT_MAX;
            }
    qb_tensor *mask = qb_from_host(ctx, 4, shape, host);
    if (!mask) *failed = true;
    return mask;
}

/* output.dense's input from intermediate.dense's (xq): out.in_q(act(xq Wq^T + b)). act_fq where that quantizer fuses,
 * else the tanh GELU in the GEMM's epilogue where the device has one (qb_linear_act). With m->recompute_act the
 * tensor that only output.dense reads (act_fq's output, or the activation when that quantizer is off) is not kept
 * for the backward (qb_new_recomputed); an unfused fake quant reads the activation in its backward, so it is kept. */
static qb_tensor *intermediate(qb_bert_model *m, const qb_bert_layer *ly, qb_tensor *xq) {
    qb_ctx *ctx = m->ctx;
    qb_bert_act act = m->cfg.hidden_act;
    qb_unary_kind kind = act == QB_ACT_GELU ? QB_UNARY_GELU : act == QB_ACT_GELU_TANH ? QB_UNARY_GELU_TANH : QB_UNARY_RELU;
    qb_fq_spec fs;
    if (fusable(m, QB_FUSE_ACT, ly->out.in_q, &fs)) {
        qb_tensor *inter = linear_quantized_input(m, &ly->inter, xq);
        return m->recompute_act ? qb_act_fq_recomputed(ctx, kind, inter, &fs) : qb_act_fq(ctx, kind, inter, &fs);
    }
    if (m->recompute_act && (!ly->out.in_q || ly->out.in_q->tq.disabled))
        return qb_activation_recomputed(ctx, kind, linear_quantized_input(m, &ly->inter, xq));
    qb_tensor *h = int8_linear(m, &ly->inter) ? activation(ctx, act, linear_quantized_input(m, &ly->inter, xq))
                                              : qb_linear_act(ctx, xq, linear_weight(m, &ly->inter), ly->inter.b, kind);
    return qb_bert_quantize(m, ly->out.in_q, h);
}

/* One layer on x; xq is x through the query input quantizer when the previous layer made it (else NULL), and *xq_next
 * gets this layer's output through next_q (the next layer's query input quantizer) when it can be fused. */
static qb_tensor *encoder_layer(qb_bert_model *m, qb_bert_layer *ly, qb_tensor *x, qb_tensor *xq, qb_tensor *mask, qb_quantizer *next_q,
                                qb_tensor **xq_next) {
    qb_ctx *ctx = m->ctx;
    const qb_bert_config *c = &m->cfg;
    int N = c->num_attention_heads;
    int64_t D = c->hidden_size / N;
    qb_quantizer *q = ly->q;
    /* the query, key and value inputs are the same tensor: quantize it once when their quantizers agree */
    if (!xq) xq = qb_bert_quantize(m, ly->query.in_q, x);
    qb_tensor *xk = same_quantization(ly->key.in_q, ly->query.in_q) ? xq : qb_bert_quantize(m, ly->key.in_q, x);
    qb_tensor *xv = same_quantization(ly->value.in_q, ly->query.in_q) ? xq : qb_bert_quantize(m, ly->value.in_q, x);
    qb_tensor *gemm_in[3] = {xq, xk != xq ? xk : NULL, xv != xq && xv != xk ? xv : NULL};
    for (int i = 0; i < 3; i++) gemm_input_only(m, gemm_in[i], x, true);
    /* per-tensor quantizers of Q, K^T and V act the same on [B, S, H] as on the head views */
    qb_tensor *qh = qb_split_heads(ctx, qb_bert_quantize(m, &q[QB_Q_MATMUL_Q], linear_quantized_input(m, &ly->query, xq)), N);
    qb_tensor *kh = qb_split_heads(ctx, qb_bert_quantize(m, &q[QB_Q_MATMUL_K], linear_quantized_input(m, &ly->key, xk)), N);
    qb_tensor *vh = qb_split_heads(ctx, qb_bert_quantize(m, &q[QB_Q_MATMUL_V], linear_quantized_input(m, &ly->value, xv)), N);
    for (int i = 0; i < 3; i++) gemm_input_only(m, gemm_in[i], x, false);
    qb_tensor *scores = matmul_quantized(m, qh, &q[QB_Q_MATMUL_Q], kh, &q[QB_Q_MATMUL_K], true); /* [B, N, S, S] */
    qb_fq_spec fs;
    float scale = (float)(1.0 / sqrt((double)D));
    qb_tensor *probs, *softmax_out = NULL; /* softmax's backward reads its output */
    if (fusable(m, QB_FUSE_SOFTMAX, &q[QB_Q_MATMUL_A], &fs)) {
        probs = qb_softmax_dropout_fq(ctx, scores, scale, mask, c->attention_probs_dropout_prob, &fs);
    } else {
        softmax_out = qb_softmax(ctx, scores, scale, mask);
        probs = qb_bert_quantize(m, &q[QB_Q_MATMUL_A], qb_dropout(ctx, softmax_out, c->attention_probs_dropout_prob));
    }
    gemm_input_only(m, probs, softmax_out, true);
    qb_tensor *context = qb_merge_heads(ctx, matmul_quantized(m, probs, &q[QB_Q_MATMUL_A], vh, &q[QB_Q_MATMUL_V], false)); /* [B, S, H] */
    gemm_input_only(m, probs, softmax_out, false);
    qb_tensor *context_q = qb_bert_quantize(m, ly->attn_out.in_q, context);
    gemm_input_only(m, context_q, NULL, true);
    qb_tensor *a = qb_dropout(ctx, linear_quantized_input(m, &ly->attn_out, context_q), c->hidden_dropout_prob);
    gemm_input_only(m, context_q, NULL, false);
    qb_tensor *attn_q;
    qb_tensor *attn = residual_layernorm(m, &q[QB_Q_ATTN_ADD_LOCAL], &q[QB_Q_ATTN_ADD_RESIDUAL], a, x, ly->attn_ln_w, ly->attn_ln_b,
                                         ly->inter.in_q, &attn_q);
    qb_tensor *inter_in = attn_q ? attn_q : qb_bert_quantize(m, ly->inter.in_q, attn);
    gemm_input_only(m, inter_in, attn, true);
    qb_tensor *hq = intermediate(m, ly, inter_in);
    gemm_input_only(m, inter_in, attn, false);
    gemm_input_only(m, hq, NULL, true);
    qb_tensor *o = qb_dropout(ctx, linear_quantized_input(m, &ly->out, hq), c->hidden_dropout_prob);
    gemm_input_only(m, hq, NULL, false);
    return residual_layernorm(m, &q[QB_Q_OUT_ADD_LOCAL], &q[QB_Q_OUT_ADD_RESIDUAL], o, attn, ly->out_ln_w, ly->out_ln_b, next_q, xq_next);
}

qb_tensor *qb_bert_forward(qb_bert_model *m, const qb_bert_batch *b) {
    qb_ctx *ctx = m->ctx;
    if (qb_ctx_failed(ctx)) return NULL;
    if (b->batch <= 0 || b->seq <= 0 || !b->input_ids)
        return qb_errorf(&ctx->err, "bert: batch of %d x %d tokens without input ids", b->batch, b->seq), NULL;
    if (!b->position_ids && b->seq > m->cfg.max_position_embeddings)
        return qb_errorf(&ctx->err, "bert: %d tokens exceed max_position_embeddings %d", b->seq, m->cfg.max_position_embeddings), NULL;
    bool failed;
    qb_tensor *mask = attention_mask(m, b, &failed);
    if (failed) return NULL;
    qb_tensor *x = embeddings(m, b);
    qb_tensor *xq = NULL;
    for (int i = 0, L = m->cfg.num_hidden_layers; i < L; i++)
        x = encoder_layer(m, &m->layers[i], x, xq, mask, i + 1 < L ? m->layers[i + 1].query.in_q : NULL, &xq);
    return qb_ctx_failed(ctx) ? NULL : x;
}

qb_tensor *qb_bert_pool(qb_bert_model *m, qb_tensor *hidden) {
    qb_ctx *ctx = m->ctx;
    if (!m->pooler.w) return qb_errorf(&ctx->err, "bert: %s has no pooler", qb_bert_head_class(m->head)), NULL;
    if (!hidden) return NULL;
    int64_t shape[2] = {hidden->shape[0], hidden->shape[2]};
    qb_tensor *first = qb_reshape(ctx, qb_slice(ctx, hidden, 1, 0, 1), 2, shape);
    return qb_tanh(ctx, qb_bert_linear_forward(m, &m->pooler, first));
}

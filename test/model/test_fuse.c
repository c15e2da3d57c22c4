/* test_fuse.c: QDQBERT with the fused fake-quant ops (quant.fuse = true, the default) against the unfused ops: a QA
 * training step (dropout on, padding mask, calibrated-style ranges with clipping) gives the same logits, loss and
 * parameter gradients bit for bit on the CPU, for GELU, tanh GELU and ReLU; quantizers that cannot be fused (one
 * disabled, one dynamic) fall back to the unfused ops in the same model. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model/heads.h"

static qb_check chk;

typedef struct step_out {
    float *start, *end, loss;
    int fused_nodes[3]; /* softmax_dropout_fq, act_fq, add_fq_layernorm nodes on the tape */
    float **grads;
    int64_t *numel;
    int n;
} step_out;

static void run(bool fuse, qb_bert_act act, int variant, step_out *o) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 5, &err);
    if (!ctx) qb_die("test_fuse", &err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 97;
    cfg.hidden_size = 32;
    cfg.num_hidden_layers = 3;
    cfg.num_attention_heads = 4;
    cfg.intermediate_size = 48;
    cfg.max_position_embeddings = 40;
    cfg.hidden_act = act;
    qb_bert_options opt = {.unfused = !fuse};
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, &opt)) qb_die("test_fuse", &ctx->err);
    for (int i = 0; i < m.n_quant; i++) {
        qb_quantizer *q = &m.quant[i];
        float amax[64];
        for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.05f + 0.001f * (float)r : 0.6f + 0.05f * (float)(i % 7);
        if (qb_quantizer_set_amax(q, amax, q->channels, &err)) qb_die("test_fuse", &err);
    }
    qb_bert_quant_enable(&m, "*", true);
    if (variant == 1) {
        qb_bert_quant_enable(&m, "*layer.1.attention.output.add_residual_input_quantizer", false);
        qb_quantizer *q = qb_bert_quantizer(&m, "bert.encoder.layer.2.attention.self.matmul_a_input_quantizer");
        free(q->tq.amax);
        q->tq.amax = NULL; /* dynamic amax */
    }
    enum { B = 3, S = 19 };
    int32_t ids[B * S], mask[B * S], start[B] = {1, 5, 17}, end[B] = {4, 9, 18};
    for (int t = 0; t < B * S; t++) {
        ids[t] = 1 + (t * 37) % 96;
        mask[t] = t % S < S - 3 * (t / S) ? 1 : 0;
    }
    qb_bert_batch in = {.batch = B, .seq = S, .input_ids = ids, .attention_mask = mask};
    ctx->training = true;
    qb_bert_output out;
    if (qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss)) qb_die("test_fuse", &ctx->err);
    memset(o->fused_nodes, 0, sizeof o->fused_nodes);
    static const char *const names[3] = {"softmax_dropout_fq", "act_fq", "add_fq_layernorm"};
    for (int i = 0; i < ctx->n_tape; i++)
        for (int k = 0; k < 3; k++) o->fused_nodes[k] += strcmp(ctx->tape[i]->op, names[k]) == 0;
    o->start = malloc(B * S * sizeof(float));
    o->end = malloc(B * S * sizeof(float));
    qb_to_host(ctx, out.logits, o->start);
    qb_to_host(ctx, out.end_logits, o->end);
    o->loss = qb_item(ctx, out.loss);
    o->n = m.n_params;
    o->grads = calloc((size_t)m.n_params, sizeof *o->grads);
    o->numel = calloc((size_t)m.n_params, sizeof *o->numel);
    for (int i = 0; i < m.n_params; i++) {
        qb_tensor *p = m.params[i];
        o->numel[i] = qb_numel(p);
        o->grads[i] = calloc((size_t)qb_numel(p), sizeof(float));
        if (p->grad) qb_to_host(ctx, p->grad, o->grads[i]);
    }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static int64_t differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

int main(void) {
    static const struct { qb_bert_act act; int variant; const char *name; } cases[] = {
        {QB_ACT_GELU, 0, "gelu"}, {QB_ACT_GELU_TANH, 0, "gelu_new"}, {QB_ACT_RELU, 0, "relu"}, {QB_ACT_GELU, 1, "gelu, mixed quantizers"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        step_out f, u;
        run(true, cases[c].act, cases[c].variant, &f);
        run(false, cases[c].act, cases[c].variant, &u);
        int L = 3, want_sm = cases[c].variant ? L - 1 : L, want_ln = cases[c].variant ? 2 * L - 1 : 2 * L;
        CHECK(&chk, f.fused_nodes[0] == want_sm && f.fused_nodes[1] == L && f.fused_nodes[2] == want_ln,
              "%s: fused nodes %d %d %d, want %d %d %d", cases[c].name, f.fused_nodes[0], f.fused_nodes[1], f.fused_nodes[2], want_sm, L, want_ln);
        CHECK(&chk, u.fused_nodes[0] + u.fused_nodes[1] + u.fused_nodes[2] == 0, "%s: fused nodes with quant.fuse false", cases[c].name);
        CHECK(&chk, memcmp(&f.loss, &u.loss, sizeof(float)) == 0, "%s: loss %.9g fused vs %.9g unfused", cases[c].name, (double)f.loss,
              (double)u.loss);
        CHECK(&chk, differ(f.start, u.start, 3 * 19) == 0 && differ(f.end, u.end, 3 * 19) == 0, "%s: logits differ", cases[c].name);
        int bad_params = 0, nonzero = 0;
        int64_t bad = 0;
        for (int i = 0; i < f.n; i++) {
            int64_t d = differ(f.grads[i], u.grads[i], f.numel[i]);
            bad += d;
            bad_params += d != 0;
            for (int64_t k = 0; k < f.numel[i]; k++)
                if (f.grads[i][k] != 0.0f) {
                    nonzero++;
                    break;
                }
        }
        CHECK(&chk, bad_params == 0, "%s: %d of %d parameter gradients differ (%lld elements)", cases[c].name, bad_params, f.n, (long long)bad);
        CHECK(&chk, nonzero > f.n / 2, "%s: only %d of %d gradients are non-zero", cases[c].name, nonzero, f.n);
        for (int i = 0; i < f.n; i++) free(f.grads[i]), free(u.grads[i]);
        free(f.grads), free(u.grads), free(f.numel), free(u.numel), free(f.start), free(f.end), free(u.start), free(u.end);
    }
    return qb_check_finish(&chk, "test_fuse");
}

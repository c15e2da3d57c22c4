/* test_fuse.c: QDQBERT with the fused fake-quant ops (quant.fuse = true, the default) against the unfused ops, and with
 * train.recompute_activation against the stored activations. A QA training step (dropout on, padding mask,
 * calibrated-style ranges with clipping) gives the same logits, loss and parameter gradients bit for bit:
 * - fused vs unfused on the CPU, for GELU, tanh GELU and ReLU; quantizers that cannot be fused (one disabled, one
 *   dynamic) fall back to the unfused ops in the same model;
 * - recomputed vs stored output.dense inputs for the fused GELU + fake quant (GELU, tanh GELU, ReLU), with every
 *   quantizer off (the plain activation), with the INT8 GEMMs (quant.int8_gemm), and with output.dense's input
 *   quantizer dynamic (not fusable: nothing recomputed); the step arena is smaller by exactly one output.dense input
 *   per layer where it is recomputed, and the recompute buffer holds one. `--cuda`: the recompute cases on the CUDA device (emulated in CI), with the
 *   cuBLASLt epilogues off and on (stored, the tanh GELU of a plain linear is cuBLASLt's epilogue and recomputed our
 *   kernel: there within fp32 rounding);
 * - precision bf16 (bf16 copies of the linears' inputs) with the recomputed activation (bit for bit) and, on cuda, the
 *   epilogues (within the bf16 tolerance), against the stored bf16 step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "autograd/cuda/backend.h"
#include "check.h"
#include "model/heads.h"

static qb_check chk;

enum { B = 3, S = 19, L = 3, H = 32, I = 48 };

/* quantizers: all on; one disabled and one dynamic (mixed); all off; output.dense's inputs dynamic */
typedef enum { QUANT_ON, QUANT_MIXED, QUANT_OFF, QUANT_OUT_DYNAMIC } variant;

typedef struct step_opts {
    bool fuse, recompute, epilogue, cuda, int8, bf16;
    qb_bert_act act;
    variant v;
} step_opts;

typedef struct step_out {
    float start[B * S], end[B * S], loss;
    int fused_nodes[3]; /* softmax_dropout_fq, act_fq, add_fq_layernorm nodes on the tape */
    int recomputed_nodes, gelu_epilogue_nodes; /* nodes with a recompute function; linear_gelu_tanh nodes */
    size_t act_peak, recompute_bytes;
    float **grads;
    int64_t *numel;
    int n;
} step_out;

static void drop_amax(qb_bert_model *m, const char *name) {
    qb_quantizer *q = qb_bert_quantizer(m, name);
    free(q->tq.amax);
    q->tq.amax = NULL; /* dynamic amax */
}

static void run(const step_opts *p, step_out *o) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(p->cuda ? QB_CUDA : QB_CPU, 5, &err);
    if (!ctx) qb_die("test_fuse", &err);
    ctx->gemm_epilogue = p->epilogue;
    if (p->bf16 && qb_ctx_set_precision(ctx, QB_PREC_BF16)) qb_die("test_fuse", &ctx->err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 97;
    cfg.hidden_size = H;
    cfg.num_hidden_layers = L;
    cfg.num_attention_heads = 4;
    cfg.intermediate_size = I;
    cfg.max_position_embeddings = 40;
    cfg.hidden_act = p->act;
    qb_bert_options opt = {.unfused = !p->fuse};
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, &opt)) qb_die("test_fuse", &ctx->err);
    m.recompute_act = p->recompute;
    m.int8_gemm = p->int8;
    for (int i = 0; i < m.n_quant; i++) {
        qb_quantizer *q = &m.quant[i];
        float amax[64];
        for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.05f + 0.001f * (float)r : 0.6f + 0.05f * (float)(i % 7);
        if (qb_quantizer_set_amax(q, amax, q->channels, &err)) qb_die("test_fuse", &err);
    }
    qb_bert_quant_enable(&m, "*", p->v != QUANT_OFF);
    if (p->v == QUANT_MIXED) {
        qb_bert_quant_enable(&m, "*layer.1.attention.output.add_residual_input_quantizer", false);
        drop_amax(&m, "bert.encoder.layer.2.attention.self.matmul_a_input_quantizer");
    }
    for (int l = 0; p->v == QUANT_OUT_DYNAMIC && l < L; l++) { /* the unfused fake quant reads the activation in its backward */
        char name[96];
        snprintf(name, sizeof name, "bert.encoder.layer.%d.output.dense._input_quantizer", l);
        drop_amax(&m, name);
    }
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
    o->recomputed_nodes = o->gelu_epilogue_nodes = 0;
    static const char *const names[3] = {"softmax_dropout_fq", "act_fq", "add_fq_layernorm"};
    for (int i = 0; i < ctx->n_tape; i++) {
        for (int k = 0; k < 3; k++) o->fused_nodes[k] += strcmp(ctx->tape[i]->op, names[k]) == 0;
        o->recomputed_nodes += ctx->tape[i]->recompute != NULL;
        o->gelu_epilogue_nodes += strcmp(ctx->tape[i]->op, "linear_gelu_tanh") == 0;
    }
    qb_to_host(ctx, out.logits, o->start);
    qb_to_host(ctx, out.end_logits, o->end);
    o->loss = qb_item(ctx, out.loss);
    qb_memory_stats ms;
    qb_ctx_memory(ctx, &ms);
    o->act_peak = ms.act_peak;
    o->recompute_bytes = ms.recompute;
    o->n = m.n_params;
    o->grads = calloc((size_t)m.n_params, sizeof *o->grads);
    o->numel = calloc((size_t)m.n_params, sizeof *o->numel);
    for (int i = 0; i < m.n_params; i++) {
        qb_tensor *t = m.params[i];
        o->numel[i] = qb_numel(t);
        o->grads[i] = calloc((size_t)qb_numel(t), sizeof(float));
        if (t->grad) qb_to_host(ctx, t->grad, o->grads[i]);
    }
    if (qb_ctx_failed(ctx)) qb_die("test_fuse", &ctx->err);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static void step_out_free(step_out *o) {
    for (int i = 0; i < o->n; i++) free(o->grads[i]);
    free(o->grads), free(o->numel);
}

static int64_t differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

/* a and b: the same loss, logits and parameter gradients (bit for bit when exact, else within fp32 rounding), most
 * gradients non-zero */
static void same_step(const char *name, const step_out *a, const step_out *b, bool exact) {
    int bad_params = 0, nonzero = 0;
    if (exact) {
        CHECK(&chk, memcmp(&a->loss, &b->loss, sizeof(float)) == 0, "%s: loss %.9g vs %.9g", name, (double)a->loss, (double)b->loss);
        CHECK(&chk, differ(a->start, b->start, B * S) == 0 && differ(a->end, b->end, B * S) == 0, "%s: logits differ", name);
    } else {
        qb_check_close(&chk, name, &a->loss, &b->loss, 1, 1e-6, 1e-5);
        qb_check_close(&chk, name, a->start, b->start, B * S, 1e-5, 1e-4);
    }
    for (int i = 0; i < a->n; i++) {
        if (exact) bad_params += differ(a->grads[i], b->grads[i], a->numel[i]) != 0;
        else qb_check_close(&chk, name, a->grads[i], b->grads[i], a->numel[i], 1e-5, 1e-3);
        for (int64_t k = 0; k < a->numel[i]; k++)
            if (a->grads[i][k] != 0.0f) {
                nonzero++;
                break;
            }
    }
    CHECK(&chk, bad_params == 0, "%s: %d of %d parameter gradients differ", name, bad_params, a->n);
    CHECK(&chk, nonzero > a->n / 2, "%s: only %d of %d gradients are non-zero", name, nonzero, a->n);
}

static void test_fused(void) {
    static const struct { qb_bert_act act; variant v; const char *name; } cases[] = {
        {QB_ACT_GELU, QUANT_ON, "gelu"}, {QB_ACT_GELU_TANH, QUANT_ON, "gelu_new"}, {QB_ACT_RELU, QUANT_ON, "relu"},
        {QB_ACT_GELU, QUANT_MIXED, "gelu, mixed quantizers"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        step_out f, u;
        run(&(step_opts){.fuse = true, .act = cases[c].act, .v = cases[c].v}, &f);
        run(&(step_opts){.fuse = false, .act = cases[c].act, .v = cases[c].v}, &u);
        bool mixed = cases[c].v == QUANT_MIXED;
        int want_sm = mixed ? L - 1 : L, want_ln = mixed ? 2 * L - 1 : 2 * L;
        CHECK(&chk, f.fused_nodes[0] == want_sm && f.fused_nodes[1] == L && f.fused_nodes[2] == want_ln,
              "%s: fused nodes %d %d %d, want %d %d %d", cases[c].name, f.fused_nodes[0], f.fused_nodes[1], f.fused_nodes[2], want_sm, L, want_ln);
        CHECK(&chk, u.fused_nodes[0] + u.fused_nodes[1] + u.fused_nodes[2] == 0, "%s: fused nodes with quant.fuse false", cases[c].name);
        char name[128];
        snprintf(name, sizeof name, "%s: fused vs unfused", cases[c].name);
        same_step(name, &f, &u, true);
        step_out_free(&f), step_out_free(&u);
    }
}

static void test_recompute(bool cuda) {
    static const struct { qb_bert_act act; variant v; bool int8; const char *name; } cases[] = {
        {QB_ACT_GELU, QUANT_ON, false, "gelu, act_fq"}, {QB_ACT_GELU_TANH, QUANT_ON, false, "gelu_new, act_fq"},
        {QB_ACT_RELU, QUANT_ON, false, "relu, act_fq"}, {QB_ACT_GELU, QUANT_ON, true, "gelu, act_fq, quant.int8_gemm"},
        {QB_ACT_GELU, QUANT_OFF, false, "gelu, quantizers off"}, {QB_ACT_GELU_TANH, QUANT_OFF, false, "gelu_new, quantizers off"},
        {QB_ACT_GELU, QUANT_OUT_DYNAMIC, false, "gelu, output.dense input dynamic"}};
    const size_t h_bytes = ((size_t)B * S * I * sizeof(float) + 63) & ~(size_t)63; /* one output.dense input in the arena */
    for (int epi = 0; epi < (cuda ? 2 : 1); epi++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            step_opts p = {.fuse = true, .epilogue = epi, .cuda = cuda, .int8 = cases[c].int8, .act = cases[c].act, .v = cases[c].v};
            step_out r, s;
            p.recompute = true;
            run(&p, &r);
            p.recompute = false;
            run(&p, &s);
            char name[128];
            snprintf(name, sizeof name, "%s%s: recomputed vs stored", cases[c].name, cuda ? (epi ? ", cuda, epilogues on" : ", cuda, epilogues off") : "");
            int want = cases[c].v == QUANT_OUT_DYNAMIC ? 0 : L;
            CHECK(&chk, r.recomputed_nodes == want && s.recomputed_nodes == 0, "%s: %d recomputed nodes (want %d), %d without the option",
                  name, r.recomputed_nodes, want, s.recomputed_nodes);
            same_step(name, &r, &s, !(epi && cases[c].act == QB_ACT_GELU_TANH && cases[c].v == QUANT_OFF));
            size_t saved = want ? (size_t)L * h_bytes : 0;
            CHECK(&chk, s.act_peak - r.act_peak == saved && r.recompute_bytes == (want ? (size_t)B * S * I * sizeof(float) : 0),
                  "%s: step arena %zu vs %zu bytes stored (want %zu fewer), recompute buffer %zu", name, r.act_peak, s.act_peak, saved,
                  r.recompute_bytes);
            step_out_free(&r), step_out_free(&s);
        }
}

/* sum (a - b)^2 <= rtol^2 sum b^2 */
static bool close_l2(const float *a, const float *b, int64_t n, double rtol) {
    double d = 0.0, r = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return d <= rtol * rtol * r;
}

/* a and b within the bf16 tests' tolerance: loss 2e-2 relative, logits and each parameter gradient 2e-2 in l2 */
static void close_step_bf16(const char *name, const step_out *a, const step_out *b) {
    CHECK(&chk, fabs((double)a->loss - b->loss) <= 2e-2 * fabs((double)b->loss), "%s: loss %.9g vs %.9g", name, (double)a->loss, (double)b->loss);
    CHECK(&chk, close_l2(a->start, b->start, B * S, 2e-2) && close_l2(a->end, b->end, B * S, 2e-2), "%s: logits differ", name);
    int bad = 0;
    for (int i = 0; i < a->n; i++) bad += !close_l2(a->grads[i], b->grads[i], a->numel[i], 2e-2);
    CHECK(&chk, bad == 0, "%s: %d of %d parameter gradients differ", name, bad, a->n);
}

/* precision bf16 (linears' inputs kept as bf16 copies) with train.recompute_activation and, on cuda, the epilogues,
 * against the stored step with the epilogues off: recompute alone bit for bit (output.dense rounds its recomputed fp32
 * input inside the GEMMs as the stored bf16 copy was rounded), the epilogues within the bf16 tolerance. The tanh GELU
 * epilogue runs where intermediate.dense's input is fp32 (quantizers off) and not where it is a bf16 copy. */
static void test_bf16(bool cuda) {
    static const struct { qb_bert_act act; variant v; const char *name; } cases[] = {
        {QB_ACT_GELU, QUANT_ON, "gelu, act_fq"}, {QB_ACT_GELU_TANH, QUANT_OFF, "gelu_new, quantizers off"},
        {QB_ACT_GELU_TANH, QUANT_OUT_DYNAMIC, "gelu_new, output.dense input dynamic"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        step_opts p = {.fuse = true, .cuda = cuda, .bf16 = true, .act = cases[c].act, .v = cases[c].v};
        step_out ref, f32;
        run(&p, &ref);
        step_opts pf = p;
        pf.bf16 = false;
        run(&pf, &f32);
        char name[160];
        snprintf(name, sizeof name, "bf16, %s%s", cases[c].name, cuda ? ", cuda" : "");
        CHECK(&chk, differ(ref.start, f32.start, B * S) > 0 && ref.act_peak < f32.act_peak,
              "%s: no bf16 step (logits as fp32's, step arena %zu vs fp32 %zu bytes)", name, ref.act_peak, f32.act_peak);
        CHECK(&chk, fabs((double)ref.loss - f32.loss) <= 2e-2 * fabs((double)f32.loss), "%s: loss %.9g vs fp32 %.9g", name, (double)ref.loss,
              (double)f32.loss);
        bool recomputable = cases[c].v != QUANT_OUT_DYNAMIC;
        for (int epi = 0; epi < (cuda ? 2 : 1); epi++)
            for (int rec = 0; rec < 2; rec++) {
                if (!epi && !rec) continue;
                step_opts q = p;
                q.epilogue = epi;
                q.recompute = rec;
                step_out o;
                run(&q, &o);
                snprintf(name, sizeof name, "bf16, %s%s%s vs stored", cases[c].name, rec ? ", recomputed" : "", epi ? ", cuda epilogues on" : cuda ? ", cuda" : "");
                int want_rec = rec && recomputable ? L : 0, want_gelu = epi && !rec && cases[c].v == QUANT_OFF ? L : 0;
                CHECK(&chk, o.recomputed_nodes == want_rec && o.gelu_epilogue_nodes == want_gelu,
                      "%s: %d recomputed nodes (want %d), %d tanh GELU epilogues (want %d)", name, o.recomputed_nodes, want_rec,
                      o.gelu_epilogue_nodes, want_gelu);
                CHECK(&chk, o.recompute_bytes == (want_rec ? (size_t)B * S * I * sizeof(float) : 0), "%s: recompute buffer %zu bytes", name,
                      o.recompute_bytes);
                if (epi) close_step_bf16(name, &o, &ref);
                else same_step(name, &o, &ref, true);
                step_out_free(&o);
            }
        if (cuda && cases[c].v == QUANT_OUT_DYNAMIC) { /* fp32: the tanh GELU epilogue (the bf16 copy is what stops it above) */
            pf.epilogue = true;
            step_out o;
            run(&pf, &o);
            CHECK(&chk, o.gelu_epilogue_nodes == L, "fp32, %s, cuda epilogues on: %d tanh GELU epilogues (want %d)", cases[c].name,
                  o.gelu_epilogue_nodes, L);
            step_out_free(&o);
        }
        step_out_free(&ref), step_out_free(&f32);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--cuda") == 0) {
        if (qb_cuda_device_count() == 0) qb_check_skip(&chk, "recompute on cuda", "no CUDA device (and not the emulated build)");
        else {
            test_recompute(true);
            test_bf16(true);
        }
        return qb_check_finish(&chk, "test_fuse --cuda");
    }
    test_fused();
    test_recompute(false);
    const char *why = qb_cpu_bf16_unavailable();
    if (why) qb_check_skip(&chk, "bf16 with recompute on the cpu", why);
    else test_bf16(false);
    return qb_check_finish(&chk, "test_fuse");
}

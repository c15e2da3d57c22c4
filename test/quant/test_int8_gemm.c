/* test_int8_gemm.c: the INT8 GEMM path (quant/op_int8_gemm.h) against the fp32 fake-quant path on the same device:
 * fake quant then qb_linear / qb_matmul. The int32 sums are exact and dequantized with one rounding, so the int8
 * output must lie within the fp32 path's own rounding bound, 2 k u sum_l |xq_l| |wq_l| + u |y| (u = 2^-24); the
 * gradients (the fp32 ops' backward through the same STE) must be bit for bit the fp32 path's. Kernel level: the codes
 * equal rint(x s) exactly, the int32 sums equal an int64 reference, the dequantization equals its float64 formula.
 * Shapes with padding (n, k not multiples of 4), per-row and per-tensor weights, bias or none, 8/7/4 bits, narrow
 * range, clipped values, amax 0, strided head views and a transposed B. A tiny BERT QA model with quant.int8_gemm on
 * runs every linear layer and both attention matmuls on codes (counted on the tape) and gives the fp32 path's loss and
 * gradients up to rounding. Argument --cuda: the same on a CUDA context (GPU or the emulator; exits 77 without one):
 * the CUDA kernels against the same exact host references. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "quant/op_int8_gemm.h"
#include "quant/quant.h"
#include "model/heads.h"

static qb_check chk;
static qb_ctx *ctx;        /* the device under test */
static double worst_ratio; /* max over outputs of |y8 - y32| / (the fp32 path's bound) */
static double worst_abs;   /* max |y8 - y32| */

static void die_on(bool bad, const char *what) {
    if (!bad) return;
    const char *dev_msg = ctx->k->error_message ? ctx->k->error_message(ctx->dev) : NULL;
    fprintf(stderr, "test_int8_gemm: %s: %s%s%s\n", what, ctx->err.msg, dev_msg && *dev_msg ? " / " : "", dev_msg ? dev_msg : "");
    exit(1);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static float uniform(uint64_t *s, float lo, float hi) { return lo + (hi - lo) * (float)((double)lcg(s) / 9007199254740992.0); }

static float *randoms(uint64_t *s, int64_t n, float scale) {
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = uniform(s, -scale, scale);
    return x;
}

static qb_tensor *param(const char *name, int ndim, const int64_t *shape, const float *host) {
    qb_tensor *t = qb_param_new(ctx, name, ndim, shape);
    die_on(!t || qb_copy_from_host(ctx, t, host), name);
    return t;
}

static float *to_host(const qb_tensor *t) {
    float *h = malloc((size_t)qb_numel(t) * sizeof *h + 4);
    die_on(!h || qb_to_host(ctx, t, h), "to host");
    return h;
}

static int64_t bits_differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

/* loss = sum(y * g): backward hands g to y. */
static void backward_with(qb_tensor *y, const float *g) {
    qb_tensor *gt = qb_from_host(ctx, y->ndim, y->shape, g);
    qb_tensor *loss = qb_sum(ctx, qb_mul(ctx, y, gt));
    die_on(!loss || qb_backward(ctx, loss), "backward");
}

/* |y8 - y32| within the fp32 path's bound: bound[i] = 2 k u sum_l |xq| |wq| (given) + u |y32|. */
static void check_forward(const char *what, const float *y8, const float *y32, const double *absdot, int64_t n, int64_t k) {
    const double u = 1.0 / 16777216.0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)y8[i] - (double)y32[i]), bound = 2.0 * (double)k * u * absdot[i] + u * fabs((double)y32[i]) + 1e-30;
        if (d > worst_abs) worst_abs = d;
        if (d / bound > worst_ratio) worst_ratio = d / bound;
        if (!(d <= bound)) {
            bad++;
            if (first < 0) first = i;
        }
    }
    CHECK(&chk, bad == 0, "%s: %lld of %lld outputs outside the fp32 rounding bound (first %lld: %.9g vs %.9g)", what, (long long)bad,
          (long long)n, (long long)first, first >= 0 ? y8[first] : 0.0, first >= 0 ? y32[first] : 0.0);
}

/* ---- linear: x [rows, in] through a per-tensor quantizer, w [out, in] per row (or per tensor), bias or none */
static void linear_case(int64_t rows, int64_t in, int64_t out, int bits, bool narrow, bool per_row, bool with_bias, float xa, float wa,
                        uint64_t seed) {
    char what[160];
    snprintf(what, sizeof what, "linear %lldx%lld @ %lldx%lld^T %d bits%s%s%s%s", (long long)rows, (long long)in, (long long)out,
             (long long)in, bits, narrow ? " narrow" : "", per_row ? " per row" : " per tensor", with_bias ? " bias" : "",
             ctx->device == QB_CUDA ? " (cuda)" : "");
    uint64_t s = seed;
    float *xh = randoms(&s, rows * in, 1.5f * xa), *wh = randoms(&s, out * in, 1.2f * wa), *bh = randoms(&s, out, 0.5f);
    float *g = randoms(&s, rows * out, 1.0f), *wamax = malloc((size_t)out * sizeof *wamax);
    for (int64_t o = 0; o < out; o++) wamax[o] = per_row ? wa * (0.5f + (float)(o % 5) * 0.2f) : wa;
    if (per_row && out > 2) wamax[1] = 0.0f; /* a row quantized to zero */
    quant_desc dx = quant_desc_default(), dw = quant_desc_default();
    dx.num_bits = dw.num_bits = bits;
    dx.narrow_range = dw.narrow_range = narrow;
    dw.axis = per_row ? 0 : -1;
    const int64_t xs[2] = {rows, in}, ws[2] = {out, in}, bs[1] = {out};
    const int64_t nw = per_row ? out : 1;
    float *y[2], *gx[2], *gw[2], *gb[2];
    qb_tensor *x = param("x", 2, xs, xh), *w = param("w", 2, ws, wh), *b = with_bias ? param("b", 1, bs, bh) : NULL;
    for (int v = 0; v < 2; v++) {
        die_on(qb_ctx_step_reset(ctx), "reset");
        qb_zero_grad(ctx);
        qb_tensor *xq = qb_fake_quant(ctx, x, &xa, 1, &dx), *wq = qb_fake_quant(ctx, w, wamax, nw, &dw);
        qb_tensor *yt = v ? qb_linear_int8(ctx, xq, &xa, &dx, wq, wamax, nw, &dw, b) : qb_linear(ctx, xq, wq, b);
        die_on(!yt, what);
        y[v] = to_host(yt);
        backward_with(yt, g);
        gx[v] = to_host(x->grad);
        gw[v] = to_host(w->grad);
        gb[v] = with_bias ? to_host(b->grad) : NULL;
    }
    /* the bound from the host's fake-quantized operands */
    float *xq = malloc((size_t)(rows * in) * sizeof *xq), *wq = malloc((size_t)(out * in) * sizeof *wq);
    fake_quant_per_tensor(xq, xh, rows * in, xa, &dx);
    if (per_row) fake_quant_per_channel(wq, wh, 1, out, in, wamax, &dw);
    else fake_quant_per_tensor(wq, wh, out * in, wa, &dw);
    double *absdot = malloc((size_t)(rows * out) * sizeof *absdot);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double a = with_bias ? fabs((double)bh[o]) : 0.0;
            for (int64_t l = 0; l < in; l++) a += fabs((double)xq[r * in + l] * wq[o * in + l]);
            absdot[r * out + o] = a;
        }
    check_forward(what, y[1], y[0], absdot, rows * out, in + 1);
    CHECK(&chk, bits_differ(gx[1], gx[0], rows * in) == 0, "%s: dx differs from the fp32 path", what);
    CHECK(&chk, bits_differ(gw[1], gw[0], out * in) == 0, "%s: dw differs from the fp32 path", what);
    if (with_bias) CHECK(&chk, bits_differ(gb[1], gb[0], out) == 0, "%s: dbias differs from the fp32 path", what);
    for (int v = 0; v < 2; v++) {
        free(y[v]);
        free(gx[v]);
        free(gw[v]);
        free(gb[v]);
    }
    free(xh), free(wh), free(bh), free(g), free(wamax), free(xq), free(wq), free(absdot);
}

/* ---- attention matmuls: q, k, v [B, S, N * D] viewed as heads [B, N, S, D] (strided); scores = q k^T, context = p v */
static void attention_case(int64_t B, int64_t S, int64_t N, int64_t D, uint64_t seed) {
    char what[128];
    snprintf(what, sizeof what, "attention B %lld S %lld N %lld D %lld%s", (long long)B, (long long)S, (long long)N, (long long)D,
             ctx->device == QB_CUDA ? " (cuda)" : "");
    uint64_t s = seed;
    const int64_t H = N * D, n = B * S * H, np = B * N * S * S;
    float *qh = randoms(&s, n, 2.0f), *kh = randoms(&s, n, 2.0f), *ph = randoms(&s, np, 0.6f), *vh = randoms(&s, n, 2.0f);
    for (int64_t i = 0; i < np; i++) ph[i] = fabsf(ph[i]);
    float *g1 = randoms(&s, np, 1.0f), *g2 = randoms(&s, n, 1.0f);
    const float qa = 1.7f, ka = 2.1f, pa = 0.5f, va = 1.9f;
    quant_desc d = quant_desc_default();
    const int64_t hs[3] = {B, S, H}, ps[4] = {B, N, S, S};
    qb_tensor *q = param("q", 3, hs, qh), *k = param("k", 3, hs, kh), *p = param("p", 4, ps, ph), *v = param("v", 3, hs, vh);
    float *sc[2], *cx[2], *gq[2], *gk[2], *gp[2], *gv[2];
    for (int vv = 0; vv < 2; vv++) {
        die_on(qb_ctx_step_reset(ctx), "reset");
        qb_zero_grad(ctx);
        qb_tensor *qq = qb_split_heads(ctx, qb_fake_quant(ctx, q, &qa, 1, &d), (int)N);
        qb_tensor *kq = qb_split_heads(ctx, qb_fake_quant(ctx, k, &ka, 1, &d), (int)N);
        qb_tensor *vq = qb_split_heads(ctx, qb_fake_quant(ctx, v, &va, 1, &d), (int)N);
        qb_tensor *pq = qb_fake_quant(ctx, p, &pa, 1, &d);
        qb_tensor *scores = vv ? qb_matmul_int8(ctx, qq, qa, &d, kq, ka, &d, true) : qb_matmul(ctx, qq, kq, false, true);
        qb_tensor *context = vv ? qb_matmul_int8(ctx, pq, pa, &d, vq, va, &d, false) : qb_matmul(ctx, pq, vq, false, false);
        die_on(!scores || !context, what);
        sc[vv] = to_host(scores);
        cx[vv] = to_host(context);
        qb_tensor *g1t = qb_from_host(ctx, 4, scores->shape, g1), *g2t = qb_from_host(ctx, 4, context->shape, g2);
        qb_tensor *loss = qb_add(ctx, qb_sum(ctx, qb_mul(ctx, scores, g1t)), qb_sum(ctx, qb_mul(ctx, context, g2t)));
        die_on(!loss || qb_backward(ctx, loss), "attention backward");
        gq[vv] = to_host(q->grad), gk[vv] = to_host(k->grad), gp[vv] = to_host(p->grad), gv[vv] = to_host(v->grad);
    }
    float *fq = malloc((size_t)n * 4), *fk = malloc((size_t)n * 4), *fv = malloc((size_t)n * 4), *fp = malloc((size_t)np * 4);
    fake_quant_per_tensor(fq, qh, n, qa, &d);
    fake_quant_per_tensor(fk, kh, n, ka, &d);
    fake_quant_per_tensor(fv, vh, n, va, &d);
    fake_quant_per_tensor(fp, ph, np, pa, &d);
    double *a1 = malloc((size_t)np * sizeof *a1), *a2 = malloc((size_t)n * sizeof *a2);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < N; h++)
            for (int64_t i = 0; i < S; i++) {
                for (int64_t j = 0; j < S; j++) {
                    double a = 0;
                    for (int64_t l = 0; l < D; l++) a += fabs((double)fq[(b * S + i) * H + h * D + l] * fk[(b * S + j) * H + h * D + l]);
                    a1[((b * N + h) * S + i) * S + j] = a;
                }
                for (int64_t l = 0; l < D; l++) {
                    double a = 0;
                    for (int64_t j = 0; j < S; j++) a += fabs((double)fp[((b * N + h) * S + i) * S + j] * fv[(b * S + j) * H + h * D + l]);
                    a2[((b * N + h) * S + i) * D + l] = a; /* context [B, N, S, D] */
                }
            }
    char w1[160], w2[160];
    snprintf(w1, sizeof w1, "%s scores", what);
    snprintf(w2, sizeof w2, "%s context", what);
    check_forward(w1, sc[1], sc[0], a1, np, D);
    check_forward(w2, cx[1], cx[0], a2, n, S);
    CHECK(&chk, bits_differ(gq[1], gq[0], n) == 0 && bits_differ(gk[1], gk[0], n) == 0, "%s: dq/dk differ from the fp32 path", what);
    CHECK(&chk, bits_differ(gp[1], gp[0], np) == 0 && bits_differ(gv[1], gv[0], n) == 0, "%s: dp/dv differ from the fp32 path", what);
    for (int vv = 0; vv < 2; vv++) free(sc[vv]), free(cx[vv]), free(gq[vv]), free(gk[vv]), free(gp[vv]), free(gv[vv]);
    free(qh), free(kh), free(ph), free(vh), free(g1), free(g2), free(fq), free(fk), free(fv), free(fp), free(a1), free(a2);
}

/* ---- a batch of A [2, 3, 5, 7] against one shared B [7, 6] (and B^T [6, 7]) */
static void shared_b_case(bool trans_b) {
    char what[96];
    snprintf(what, sizeof what, "matmul shared B%s%s", trans_b ? "^T" : "", ctx->device == QB_CUDA ? " (cuda)" : "");
    uint64_t s = 11 + trans_b;
    const int64_t as[4] = {2, 3, 5, 7}, bs[2] = {trans_b ? 6 : 7, trans_b ? 7 : 6}, n = 2 * 3 * 5 * 7, nc = 2 * 3 * 5 * 6;
    float *ah = randoms(&s, n, 1.5f), *bh = randoms(&s, 42, 1.5f), *g = randoms(&s, nc, 1.0f);
    const float aa = 1.1f, ba = 1.3f;
    quant_desc d = quant_desc_default();
    qb_tensor *a = param("a", 4, as, ah), *b = param("b", 2, bs, bh);
    float *y[2], *ga[2], *gb[2];
    for (int v = 0; v < 2; v++) {
        die_on(qb_ctx_step_reset(ctx), "reset");
        qb_zero_grad(ctx);
        qb_tensor *aq = qb_fake_quant(ctx, a, &aa, 1, &d), *bq = qb_fake_quant(ctx, b, &ba, 1, &d);
        qb_tensor *yt = v ? qb_matmul_int8(ctx, aq, aa, &d, bq, ba, &d, trans_b) : qb_matmul(ctx, aq, bq, false, trans_b);
        die_on(!yt, what);
        y[v] = to_host(yt);
        backward_with(yt, g);
        ga[v] = to_host(a->grad);
        gb[v] = to_host(b->grad);
    }
    float *fa = malloc((size_t)n * 4), *fb = malloc(42 * 4);
    fake_quant_per_tensor(fa, ah, n, aa, &d);
    fake_quant_per_tensor(fb, bh, 42, ba, &d);
    double *absdot = malloc((size_t)nc * sizeof *absdot);
    for (int64_t r = 0; r < 30; r++)
        for (int64_t j = 0; j < 6; j++) {
            double acc = 0;
            for (int64_t l = 0; l < 7; l++) acc += fabs((double)fa[r * 7 + l] * fb[trans_b ? j * 7 + l : l * 6 + j]);
            absdot[r * 6 + j] = acc;
        }
    check_forward(what, y[1], y[0], absdot, nc, 7);
    CHECK(&chk, bits_differ(ga[1], ga[0], n) == 0 && bits_differ(gb[1], gb[0], 42) == 0, "%s: gradients differ from the fp32 path", what);
    for (int v = 0; v < 2; v++) free(y[v]), free(ga[v]), free(gb[v]);
    free(ah), free(bh), free(g), free(fa), free(fb), free(absdot);
}

/* ---- kernels: codes, sums and dequantization against host references (and, on cuda, the CPU kernels) */
static void kernel_case(void) {
    const qb_quant_kernels *qk = ctx->device == QB_CUDA ? &qb_quant_cuda_kernels : &qb_quant_cpu_kernels;
    qb_dev *dev = ctx->dev;
    uint64_t s = 99;
    const int64_t batch = 3, m = 5, n = 6, k = 9, np = 8, kp = 12;
    float *x = randoms(&s, batch * m * k, 3.0f), *w = randoms(&s, batch * k * n, 3.0f);
    const float amax[1] = {2.5f};
    const float bound = 127.0f, qmin = -128.0f;
    float *xd = qb_act_alloc(ctx, sizeof(float) * (size_t)(batch * m * k)), *wd = qb_act_alloc(ctx, sizeof(float) * (size_t)(batch * k * n));
    float *ad = qb_upload_f32(ctx, amax, 1);
    int8_t *qa = qb_act_alloc(ctx, (size_t)(batch * m * kp)), *qbb = qb_act_alloc(ctx, (size_t)(batch * np * kp));
    int32_t *acc = qb_act_alloc(ctx, sizeof(int32_t) * (size_t)(batch * m * np));
    float *y = qb_act_alloc(ctx, sizeof(float) * (size_t)(batch * m * n));
    die_on(!xd || !wd || !ad || !qa || !qbb || !acc || !y || qb_upload(ctx, xd, x, sizeof(float) * (size_t)(batch * m * k)) ||
               qb_upload(ctx, wd, w, sizeof(float) * (size_t)(batch * k * n)),
           "kernel buffers");
    const int64_t as[4] = {1, batch, m, k}, ast[4] = {0, m * k, k, 1}, bs[4] = {batch, 1, k, n}, bst[4] = {k * n, 0, n, 1};
    die_on(qk->quantize_s8(dev, qa, xd, as, ast, false, m, kp, ad, 1, qmin, bound) != 0, "quantize a");
    die_on(qk->quantize_s8(dev, qbb, wd, bs, bst, true, np, kp, ad, 1, qmin, bound) != 0, "quantize b (transposed)");
    die_on(qk->gemm_s8(dev, acc, qa, qbb, m, np, kp, batch) != 0, "gemm_s8");
    die_on(qk->dequant_s32(dev, y, acc, batch, m, n, np, ad, bound, ad, 1, bound, NULL) != 0, "dequant_s32");
    int8_t *ha = malloc((size_t)(batch * m * kp)), *hb = malloc((size_t)(batch * np * kp));
    int32_t *hacc = malloc(sizeof(int32_t) * (size_t)(batch * m * np));
    float *hy = malloc(sizeof(float) * (size_t)(batch * m * n));
    die_on(qb_download(ctx, ha, qa, (size_t)(batch * m * kp)) || qb_download(ctx, hb, qbb, (size_t)(batch * np * kp)) ||
               qb_download(ctx, hacc, acc, sizeof(int32_t) * (size_t)(batch * m * np)) ||
               qb_download(ctx, hy, y, sizeof(float) * (size_t)(batch * m * n)),
           "kernel download");
    const float sc = 127.0f / 2.5f;
    int64_t bad_codes = 0, bad_sums = 0, bad_y = 0;
    for (int64_t p = 0; p < batch; p++) {
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < kp; c++) {
                float v = c < k ? rintf(x[(p * m + r) * k + c] * sc) : 0.0f;
                v = v < qmin ? qmin : v > bound ? bound : v;
                bad_codes += ha[(p * m + r) * kp + c] != (int8_t)v;
            }
        for (int64_t j = 0; j < np; j++)
            for (int64_t c = 0; c < kp; c++) {
                float v = c < k && j < n ? rintf(w[(p * k + c) * n + j] * sc) : 0.0f;
                v = v < qmin ? qmin : v > bound ? bound : v;
                bad_codes += hb[(p * np + j) * kp + c] != (int8_t)v;
            }
        for (int64_t r = 0; r < m; r++)
            for (int64_t j = 0; j < np; j++) {
                int64_t a = 0;
                for (int64_t c = 0; c < kp; c++) a += (int64_t)ha[(p * m + r) * kp + c] * hb[(p * np + j) * kp + c];
                bad_sums += hacc[(p * m + r) * np + j] != a;
                if (j < n) bad_y += hy[(p * m + r) * n + j] != (float)((double)a / ((double)sc * (double)sc));
            }
    }
    CHECK(&chk, bad_codes == 0, "quantize_s8 (%s): %lld codes differ from clamp(rint(x s))", qk->name, (long long)bad_codes);
    CHECK(&chk, bad_sums == 0, "gemm_s8 (%s): %lld int32 sums differ from the int64 reference", qk->name, (long long)bad_sums);
    CHECK(&chk, bad_y == 0, "dequant_s32 (%s): %lld outputs differ from acc / (s_a s_b) rounded once", qk->name, (long long)bad_y);
    free(x), free(w), free(ha), free(hb), free(hacc), free(hy);
}

/* ---- a tiny BERT QA model, quantizers on with fixed ranges: int8_gemm off, then on */
static void model_case(void) {
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.num_hidden_layers = 2;
    cfg.hidden_size = 32;
    cfg.num_attention_heads = 4;
    cfg.intermediate_size = 64;
    cfg.vocab_size = 97;
    cfg.max_position_embeddings = 32;
    qb_bert_model m;
    die_on(qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL) != 0, "tiny model");
    qb_err err = {0};
    for (int i = 0; i < m.n_quant; i++) {
        qb_quantizer *q = &m.quant[i];
        float *amax = malloc((size_t)q->channels * sizeof(float));
        for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.05f + 0.001f * (float)(r % 7) : 3.0f;
        if (qb_quantizer_set_amax(q, amax, q->channels, &err)) die_on(true, err.msg);
        free(amax);
    }
    qb_bert_quant_enable(&m, "*", true);
    enum { B = 3, S = 13 };
    int32_t ids[B * S], start[B] = {1, 4, 7}, end[B] = {2, 9, 12};
    for (int i = 0; i < B * S; i++) ids[i] = 1 + (i * 31) % 96;
    qb_bert_batch in = {.batch = B, .seq = S, .input_ids = ids};
    const int64_t numel = ctx->params.block_numel;
    float *grads[2], loss[2];
    int on_codes[2];
    ctx->training = false; /* no dropout: the two runs see the same network */
    for (int v = 0; v < 2; v++) {
        m.int8_gemm = v == 1;
        die_on(qb_ctx_step_reset(ctx), "reset");
        qb_zero_grad(ctx);
        qb_bert_output out;
        die_on(qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss), "model step");
        loss[v] = qb_item(ctx, out.loss);
        on_codes[v] = 0;
        for (int k = 0; k < ctx->n_tape; k++)
            on_codes[v] += !strcmp(ctx->tape[k]->op, "linear_int8") || !strcmp(ctx->tape[k]->op, "matmul_int8");
        grads[v] = malloc((size_t)numel * sizeof(float));
        die_on(qb_download(ctx, grads[v], ctx->params.block_grad, (size_t)numel * sizeof(float)) != 0, "gradients");
    }
    CHECK(&chk, on_codes[0] == 0 && on_codes[1] == 8 * cfg.num_hidden_layers, "model: %d and %d GEMMs on int8 codes (want 0 and %d)",
          on_codes[0], on_codes[1], 8 * cfg.num_hidden_layers);
    CHECK(&chk, fabsf(loss[1] - loss[0]) <= 1e-5f * fabsf(loss[0]), "model: loss %.9g with int8 GEMMs vs %.9g", loss[1], loss[0]);
    double gmax = 0, dmax = 0;
    for (int64_t i = 0; i < numel; i++) {
        gmax = fmax(gmax, fabs(grads[0][i]));
        dmax = fmax(dmax, fabs((double)grads[1][i] - grads[0][i]));
    }
    CHECK(&chk, gmax > 0 && dmax <= 1e-3 * gmax, "model: gradients differ by %.3g (largest %.3g)", dmax, gmax);
    printf("tiny model (%s): loss %.9g (int8) vs %.9g (fp32), gradients within %.3g of max %.3g\n", ctx->device == QB_CUDA ? "cuda" : "cpu",
           loss[1], loss[0], dmax, gmax);
    free(grads[0]);
    free(grads[1]);
    qb_bert_free(&m);
    ctx->training = true;
}

/* The ops on every case; on cuda also the outputs against the CPU's int8 path bit for bit (same codes, exact sums,
 * the same float64 dequantization). */
static void run_all(void) {
    kernel_case();
    linear_case(6, 16, 8, 8, false, true, true, 1.0f, 0.1f, 1);
    linear_case(5, 13, 7, 8, false, true, true, 0.8f, 0.07f, 2);   /* k and n padded */
    linear_case(7, 33, 10, 8, true, false, false, 2.0f, 0.2f, 3);  /* narrow, per tensor, no bias */
    linear_case(4, 24, 12, 7, false, true, true, 0.5f, 0.05f, 4);  /* 7 bits */
    linear_case(9, 20, 5, 4, true, true, false, 1.0f, 0.1f, 5);    /* 4 bits narrow */
    linear_case(3, 64, 20, 8, false, true, true, 1e-30f, 0.1f, 6); /* input amax below 2^-24: all zero */
    attention_case(2, 5, 2, 6, 7);                                 /* S and D not multiples of 4 */
    attention_case(1, 8, 3, 4, 8);
    shared_b_case(false);
    shared_b_case(true);
    model_case();
}

int main(int argc, char **argv) {
    const bool want_cuda = argc > 1 && !strcmp(argv[1], "--cuda");
    qb_err err = {0};
    if (want_cuda && qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "int8 gemm on cuda", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "int8 gemm");
    }
    ctx = qb_ctx_new(want_cuda ? QB_CUDA : QB_CPU, 5, &err);
    if (!ctx) qb_die("test_int8_gemm", &err);
    ctx->training = true;
    quant_desc u = quant_desc_default();
    u.is_unsigned = true;
    CHECK(&chk, !qb_int8_gemm_supported(&u), "unsigned codes do not fit int8");
    u.is_unsigned = false;
    u.num_bits = 9;
    CHECK(&chk, !qb_int8_gemm_supported(&u), "9-bit codes do not fit int8");
    run_all();
    printf("int8 vs fp32 fake-quant path (%s): max |difference| %.3g, at most %.3f of the fp32 path's rounding bound\n",
           want_cuda ? "cuda" : "cpu", worst_abs, worst_ratio);
    CHECK(&chk, worst_abs > 0.0, "the int8 and fp32 paths should differ somewhere by the fp32 path's rounding");
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "int8 gemm");
}

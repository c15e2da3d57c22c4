/* fused_cases.h: the fused ops' test cases (test_fused on the CPU, test_cuda_fused on CUDA): each case builds one fused
 * op or the unfused composition it replaces on a context, from the same host inputs, and returns its outputs and the
 * gradients of every input for the loss sum_k sum(out_k * w_k) (fixed weights w_k), as host arrays. */
#pragma once
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant/op_fused.h"
#include "quant/quant.h"

#define FC_MAX 4

typedef struct fc_result {
    int n_out, n_in;
    int64_t out_n[FC_MAX], in_n[FC_MAX];
    float *out[FC_MAX], *grad[FC_MAX];
    char err[1024];
} fc_result;

typedef struct fc_case {
    const char *name;
    int kind;          /* 0 softmax + dropout + fq, 1 activation + fq, 2 add + fq + layer norm (+ yq) */
    int ndim;
    int64_t shape[4];
    float p;           /* dropout (kind 0) */
    bool training, mask, with_yq, affine;
    qb_unary_kind act; /* kind 1 */
    float amax[3];
    int bits;
    bool leaf;         /* the input a parameter: its gradient accumulates (keep 1) instead of taking over dz's buffer */
} fc_case;

static const fc_case fc_cases[] = {
    {"softmax+dropout+fq", 0, 4, {2, 3, 5, 7}, 0.1f, true, true, false, false, QB_UNARY_GELU, {0.37f, 0, 0}, 8, false},
    {"softmax+dropout+fq (seq 64, no mask)", 0, 4, {2, 2, 64, 64}, 0.25f, true, false, false, false, QB_UNARY_GELU, {0.05f, 0, 0}, 8, false},
    {"softmax+fq (eval)", 0, 3, {3, 4, 9}, 0.1f, false, true, false, false, QB_UNARY_GELU, {0.5f, 0, 0}, 4, false},
    {"gelu+fq", 1, 2, {5, 37}, 0, true, false, false, false, QB_UNARY_GELU, {1.5f, 0, 0}, 8, false},
    {"gelu_tanh+fq", 1, 2, {64, 40}, 0, true, false, false, false, QB_UNARY_GELU_TANH, {1.1f, 0, 0}, 8, false},
    {"tanh+fq", 1, 1, {131}, 0, true, false, false, false, QB_UNARY_TANH, {0.6f, 0, 0}, 6, false},
    {"relu+fq", 1, 2, {200, 210}, 0, true, false, false, false, QB_UNARY_RELU, {2.5f, 0, 0}, 8, false},
    {"add+fq+layernorm", 2, 3, {2, 3, 33}, 0, true, false, false, true, QB_UNARY_GELU, {1.2f, 0.9f, 0}, 8, false},
    {"add+fq+layernorm+fq out", 2, 3, {2, 16, 96}, 0, true, false, true, true, QB_UNARY_GELU, {1.5f, 2.0f, 1.1f}, 8, false},
    {"add+fq+layernorm (no affine) + fq out", 2, 2, {7, 5}, 0, true, false, true, false, QB_UNARY_GELU, {0.7f, 3.0f, 0.8f}, 8, false},
    {"softmax+dropout+fq (leaf input)", 0, 4, {1, 2, 6, 33}, 0.2f, true, true, false, false, QB_UNARY_GELU, {0.3f, 0, 0}, 8, true},
    {"gelu+fq (leaf input)", 1, 2, {9, 70}, 0, true, false, false, false, QB_UNARY_GELU, {1.3f, 0, 0}, 8, true},
    {"add+fq+layernorm+fq out (leaf input)", 2, 2, {6, 40}, 0, true, false, true, true, QB_UNARY_GELU, {1.0f, 1.4f, 0.9f}, 8, true},
};
#define FC_N_CASES ((int)(sizeof fc_cases / sizeof fc_cases[0]))

static uint64_t fc_lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static float *fc_random(int64_t n, uint64_t seed, float lo, float hi) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (float)((double)fc_lcg(&seed) / 9007199254740992.0);
    return v;
}

static int64_t fc_numel(const fc_case *c) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
    return n;
}

/* A leaf parameter from host data and an intermediate copy of it (so that both gradient modes, overwrite and
 * accumulate, are taken). */
static qb_tensor *fc_input(qb_ctx *ctx, fc_result *r, qb_tensor **leaves, int ndim, const int64_t *shape, const float *host, bool through) {
    qb_tensor *p = qb_param_new(ctx, "in", ndim, shape);
    if (!p || qb_copy_from_host(ctx, p, host)) return NULL;
    leaves[r->n_in++] = p;
    return through ? qb_scale(ctx, p, 1.0f) : p;
}

/* Runs case c on ctx, fused or not; 0, or -1 with r->err set. */
static int fc_run(qb_ctx *ctx, const fc_case *c, bool fused, fc_result *r) {
    memset(r, 0, sizeof *r);
    quant_desc d = quant_desc_default();
    d.num_bits = c->bits;
    d.axis = -1;
    const int64_t n = fc_numel(c), h = c->shape[c->ndim - 1];
    qb_tensor *leaves[FC_MAX], *outs[FC_MAX];
    int n_out = 0;
    ctx->training = c->training;
    qb_fq_spec s0 = {c->amax[0], &d}, s1 = {c->amax[1], &d}, s2 = {c->amax[2], &d};
    if (c->kind == 0) {
        float *xh = fc_random(n, 11, -3.0f, 3.0f);
        qb_tensor *x = fc_input(ctx, r, leaves, c->ndim, c->shape, xh, !c->leaf), *mask = NULL;
        free(xh);
        if (c->mask) {
            int64_t ms[4] = {c->shape[0], 1, 1, h};
            float *mh = calloc((size_t)(c->shape[0] * h), sizeof(float));
            for (int64_t i = 0; i < c->shape[0] * h; i++) mh[i] = i % 5 == 3 ? -FLT_MAX : 0.0f;
            if (c->ndim == 4) {
                mask = qb_from_host(ctx, 4, ms, mh);
            } else { /* [1, 1, h] against [b, n, h] */
                int64_t m3[3] = {1, 1, h};
                mask = qb_from_host(ctx, 3, m3, mh);
            }
            free(mh);
        }
        outs[n_out++] = fused ? qb_softmax_dropout_fq(ctx, x, 0.4f, mask, c->p, &s0)
                              : qb_fake_quant(ctx, qb_dropout(ctx, qb_softmax(ctx, x, 0.4f, mask), c->p), &c->amax[0], 1, &d);
    } else if (c->kind == 1) {
        float *xh = fc_random(n, 12, -4.0f, 4.0f);
        qb_tensor *x = fc_input(ctx, r, leaves, c->ndim, c->shape, xh, !c->leaf);
        free(xh);
        qb_tensor *y = NULL;
        if (!fused) {
            switch (c->act) {
            case QB_UNARY_GELU: y = qb_gelu(ctx, x); break;
            case QB_UNARY_GELU_TANH: y = qb_gelu_tanh(ctx, x); break;
            case QB_UNARY_TANH: y = qb_tanh(ctx, x); break;
            case QB_UNARY_RELU: y = qb_relu(ctx, x); break;
            }
        }
        outs[n_out++] = fused ? qb_act_fq(ctx, c->act, x, &s0) : qb_fake_quant(ctx, y, &c->amax[0], 1, &d);
    } else {
        float *ah = fc_random(n, 13, -2.0f, 2.0f), *rh = fc_random(n, 14, -3.0f, 3.0f), *gh = fc_random(h, 15, 0.5f, 1.5f),
              *bh = fc_random(h, 16, -0.5f, 0.5f);
        qb_tensor *a = fc_input(ctx, r, leaves, c->ndim, c->shape, ah, !c->leaf), *res = fc_input(ctx, r, leaves, c->ndim, c->shape, rh, false);
        qb_tensor *g = c->affine ? fc_input(ctx, r, leaves, 1, &h, gh, false) : NULL;
        qb_tensor *b = c->affine ? fc_input(ctx, r, leaves, 1, &h, bh, false) : NULL;
        free(ah), free(rh), free(gh), free(bh);
        /* the residual has a second consumer, as in the model: its gradient accumulates */
        outs[n_out++] = qb_scale(ctx, res, 0.5f);
        qb_tensor *y, *yq = NULL;
        if (fused) {
            y = qb_add_fq_layernorm(ctx, a, res, g, b, 1e-5f, &s0, &s1, c->with_yq ? &s2 : NULL, c->with_yq ? &yq : NULL);
        } else {
            y = qb_layernorm(ctx, qb_add(ctx, qb_fake_quant(ctx, a, &c->amax[0], 1, &d), qb_fake_quant(ctx, res, &c->amax[1], 1, &d)), g, b, 1e-5f);
            if (c->with_yq) yq = qb_fake_quant(ctx, y, &c->amax[2], 1, &d);
        }
        outs[n_out++] = y;
        if (c->with_yq) outs[n_out++] = yq;
    }
    qb_tensor *loss = NULL;
    for (int k = 0; k < n_out && !qb_ctx_failed(ctx); k++) {
        float *wh = fc_random(qb_numel(outs[k]), 100 + (uint64_t)k, -1.0f, 1.0f);
        qb_tensor *w = qb_from_host(ctx, outs[k]->ndim, outs[k]->shape, wh);
        free(wh);
        qb_tensor *t = qb_sum(ctx, qb_mul(ctx, outs[k], w));
        loss = loss ? qb_add(ctx, loss, t) : t;
    }
    if (qb_ctx_failed(ctx) || !loss || qb_backward(ctx, loss)) {
        snprintf(r->err, sizeof r->err, "%s", ctx->err.msg);
        return -1;
    }
    r->n_out = n_out;
    for (int k = 0; k < n_out; k++) {
        r->out_n[k] = qb_numel(outs[k]);
        r->out[k] = malloc((size_t)r->out_n[k] * sizeof(float));
        qb_to_host(ctx, outs[k], r->out[k]);
    }
    for (int k = 0; k < r->n_in; k++) {
        r->in_n[k] = qb_numel(leaves[k]);
        r->grad[k] = malloc((size_t)r->in_n[k] * sizeof(float));
        if (leaves[k]->grad) qb_to_host(ctx, leaves[k]->grad, r->grad[k]);
        else memset(r->grad[k], 0, (size_t)r->in_n[k] * sizeof(float));
    }
    return qb_ctx_failed(ctx) ? -1 : 0;
}

static void fc_free(fc_result *r) {
    for (int k = 0; k < FC_MAX; k++) free(r->out[k]), free(r->grad[k]);
}

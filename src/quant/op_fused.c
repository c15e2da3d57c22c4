/* op_fused.c: see op_fused.h (kernels: the quant table's fused entries). */
#include "quant/op_fused.h"

#include "autograd/op_internal.h"
#include "autograd/rng.h"
#include "quant/quant_kernels.h"

/* Checks a fused fake quant and uploads its amax into step memory at dev (one float); 0 or -1. */
static int fq_point(qb_ctx *ctx, const char *op, const qb_fq_spec *s, float *dev, qb_fq_point *p) {
    if (!s || !s->desc) return qb_errorf(&ctx->err, "%s: no fake quant given", op);
    if (quant_desc_validate(s->desc, &ctx->err)) return -1;
    if (s->desc->is_unsigned) return qb_errorf(&ctx->err, "%s: unsigned fake quant is not fused", op);
    if (!(s->amax >= 0.0f)) return qb_errorf(&ctx->err, "%s: amax = %g (must be >= 0)", op, (double)s->amax);
    if (qb_upload(ctx, dev, &s->amax, sizeof(float))) return -1;
    p->amax = dev;
    p->qmin = quant_desc_qmin(s->desc);
    p->qmax = quant_desc_bound(s->desc);
    return 0;
}

/* ---- softmax, dropout, fake quant. saved[0] = probabilities, saved[1] = amax; f[0] = scale, f[1] = p; i[0] = RNG
 * offset, i[1] = dropout on */

static qb_fused_dropout node_dropout(const qb_ctx *ctx, const qb_node *n) {
    float p = n->f[1];
    return (qb_fused_dropout){.on = n->i[1] != 0, .key = qb_rng_key32(ctx->seed), .offset = (uint64_t)n->i[0], .p = p,
                              .inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
}

static void softmax_fq_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *z = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, z, &overwrite);
    if (!dx) return;
    int64_t c = x->shape[x->ndim - 1], rows = qb_numel(x) / c;
    qb_fused_dropout drop = node_dropout(ctx, n);
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, "softmax_dropout_fq", softmax_fq_grad, dx->data, overwrite ? 0.0f : 1.0f, n->saved[0], z->grad->data,
               n->f[0], rows, c, &drop, n->saved[1]);
}

qb_tensor *qb_softmax_dropout_fq(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask, float p, const qb_fq_spec *fq) {
    static const char op[] = "softmax_dropout_fq";
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, op, x, mask);
    if (!(p >= 0.0f && p <= 1.0f)) return qb_errorf(&ctx->err, "%s: probability %g is outside [0, 1]", op, p), NULL;
    int64_t sh[4], mst[4];
    if (qb_softmax_mask_layout(ctx, op, x, mask, sh, mst)) return NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *z = x ? qb_new_like(ctx, x) : NULL;
    int64_t cnt = x ? qb_numel(x) : 0;
    float *probs = z ? qb_act_alloc(ctx, (size_t)cnt * sizeof(float)) : NULL, *amax = probs ? qb_act_alloc(ctx, sizeof(float)) : NULL;
    qb_fq_point pt;
    if (!amax || fq_point(ctx, op, fq, amax, &pt)) return NULL;
    bool dropping = ctx->training && p > 0.0f;
    qb_fused_dropout drop = {.on = dropping, .key = qb_rng_key32(ctx->seed), .offset = ctx->rng_counter, .p = p,
                             .inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
    if (dropping) ctx->rng_counter += (uint64_t)cnt;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (QB_QKERNEL(&ctx->err, &ex, op, softmax_fq, probs, z->data, x->data, scale, mask ? mask->data : NULL, sh, mst, &drop, &pt))
        return NULL;
    qb_node *n = qb_record(ctx, op, softmax_fq_backward, z, &x, 1);
    if (n) {
        n->saved[0] = probs;
        n->saved[1] = amax;
        n->f[0] = scale;
        n->f[1] = p;
        n->i[0] = (int64_t)drop.offset;
        n->i[1] = dropping;
    }
    return qb_ctx_failed(ctx) ? NULL : z;
}

/* ---- activation, fake quant. saved[0] = amax; i[0] = kind; f[0], f[1] = qmin, qmax */

static void act_fq_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *z = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, z, &overwrite);
    if (!dx) return;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, n->op, act_fq_grad, (qb_unary_kind)n->i[0], overwrite ? 0.0f : 1.0f, dx->data, z->grad->data, x->data,
               qb_numel(x), n->saved[0]);
}

static void act_fq_recompute(qb_ctx *ctx, qb_node *n) {
    qb_fq_point pt = {.amax = n->saved[0], .qmin = n->f[0], .qmax = n->f[1]};
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, n->op, act_fq, (qb_unary_kind)n->i[0], n->out->data, n->in[0]->data, qb_numel(n->in[0]), &pt);
}

static qb_tensor *act_fq(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x, const qb_fq_spec *fq, bool recomputed) {
    static const char op[] = "act_fq";
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, op, x);
    if (act != QB_UNARY_GELU && act != QB_UNARY_GELU_TANH && act != QB_UNARY_TANH && act != QB_UNARY_RELU)
        return qb_errorf(&ctx->err, "%s: unknown activation %d", op, (int)act), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *z = !x ? NULL : recomputed ? qb_new_recomputed(ctx, x->ndim, x->shape) : qb_new_like(ctx, x);
    float *amax = z ? qb_act_alloc(ctx, sizeof(float)) : NULL;
    qb_fq_point pt;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (!amax || fq_point(ctx, op, fq, amax, &pt) || QB_QKERNEL(&ctx->err, &ex, op, act_fq, act, z->data, x->data, qb_numel(x), &pt))
        return NULL;
    qb_node *n = qb_record(ctx, op, act_fq_backward, z, &x, 1);
    if (n) {
        n->saved[0] = amax;
        n->i[0] = act;
        n->f[0] = pt.qmin;
        n->f[1] = pt.qmax;
        if (recomputed) n->recompute = act_fq_recompute;
    }
    return qb_ctx_failed(ctx) ? NULL : z;
}

qb_tensor *qb_act_fq(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x, const qb_fq_spec *fq) { return act_fq(ctx, act, x, fq, false); }
qb_tensor *qb_act_fq_recomputed(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x, const qb_fq_spec *fq) {
    return act_fq(ctx, act, x, fq, true);
}

/* ---- residual add of two fake-quantized inputs, layer norm, and the output's fake quant.
 * add_fq_layernorm: saved[0] = [mean [R], rstd [R], amax_a, amax_r, amax_y], saved[1] = s; f[0] = eps.
 * its output fake quant: saved[0] = amax_y. */

static void add_fq_layernorm_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *r = n->in[1], *gamma = n->in[2], *beta = n->in[3], *y = n->out;
    int64_t h = a->shape[a->ndim - 1], rows = qb_numel(a) / h;
    const float *mean = n->saved[0], *rstd = mean + rows, *amax = rstd + rows, *s = n->saved[1], *dy = y->grad->data;
    bool dg_needed = gamma && gamma->requires_grad, db_needed = beta && beta->requires_grad;
    if (dg_needed || db_needed) {
        qb_tensor *dgt = dg_needed ? qb_grad(ctx, gamma) : NULL, *dbt = db_needed ? qb_grad(ctx, beta) : NULL;
        if ((dg_needed && !dgt) || (db_needed && !dbt)) return;
        if (QB_KERNEL(ctx, n->op, layernorm_grad_params, dgt ? dgt->data : NULL, dbt ? dbt->data : NULL, dy, s, mean, rstd, rows, h)) return;
    }
    /* r first: with overwrite, a's gradient takes over dy's buffer (the kernel reads dy[i] before writing da[i]) */
    qb_tensor *dr = r->requires_grad ? qb_grad(ctx, r) : NULL, *da = NULL;
    bool overwrite = false;
    if (r->requires_grad && !dr) return;
    if (a->requires_grad && !(da = qb_grad_reuse(ctx, a, y, &overwrite))) return;
    if (!da && !dr) return;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, n->op, add_fq_layernorm_grad, da ? da->data : NULL, overwrite ? 0.0f : 1.0f, dr ? dr->data : NULL, 1.0f, dy,
               s, a->data, r->data, gamma ? gamma->data : NULL, mean, rstd, rows, h, amax, amax + 1);
}

static void out_fq_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *y = n->in[0], *yq = n->out;
    bool overwrite;
    qb_tensor *dy = qb_grad_reuse(ctx, y, yq, &overwrite);
    if (!dy) return;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, n->op, fake_quant_grad, dy->data, overwrite ? 0.0f : 1.0f, yq->grad->data, y->data, 1, 1, qb_numel(y),
               (const float *)n->saved[0]);
}

qb_tensor *qb_add_fq_layernorm(qb_ctx *ctx, qb_tensor *a, qb_tensor *r, qb_tensor *gamma, qb_tensor *beta, float eps, const qb_fq_spec *fa,
                               const qb_fq_spec *fr, const qb_fq_spec *fy, qb_tensor **yq) {
    static const char op[] = "add_fq_layernorm";
    if (yq) *yq = NULL;
    QB_OP_BEGIN(ctx, a, r);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, op, a, r, gamma, beta);
    bool same = a->ndim >= 1 && a->ndim == r->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == r->shape[d];
    if (!same)
        return qb_errorf(&ctx->err, "%s: inputs %s and %s differ in shape", op, QB_SHAPES(a, r)), NULL;
    int64_t h = a->shape[a->ndim - 1];
    if (h == 0) return qb_errorf(&ctx->err, "%s: normalised dim is empty in %s", op, qb_shape_str(a, qb_sa_, sizeof qb_sa_)), NULL;
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != h))
        return qb_errorf(&ctx->err, "%s: weight %s does not match input %s", op, QB_SHAPES(gamma, a)), NULL;
    if (beta && (beta->ndim != 1 || beta->shape[0] != h))
        return qb_errorf(&ctx->err, "%s: bias %s does not match input %s", op, QB_SHAPES(beta, a)), NULL;
    a = qb_contiguous(ctx, a);
    r = qb_contiguous(ctx, r);
    qb_tensor *y = a && r ? qb_new_like(ctx, a) : NULL;
    bool with_yq = fy && yq;
    qb_tensor *q = y && with_yq ? qb_new_like(ctx, a) : NULL;
    if (!y || (with_yq && !q)) return NULL;
    int64_t rows = qb_numel(a) / h;
    float *stats = qb_act_alloc(ctx, (size_t)(2 * rows + 3) * sizeof(float)), *s = qb_act_alloc(ctx, (size_t)qb_numel(a) * sizeof(float));
    if (!stats || !s) return NULL;
    float *amax = stats + 2 * rows;
    qb_fq_point pa, pr, py = {0};
    if (fq_point(ctx, op, fa, amax, &pa) || fq_point(ctx, op, fr, amax + 1, &pr) || (with_yq && fq_point(ctx, op, fy, amax + 2, &py)))
        return NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (QB_QKERNEL(&ctx->err, &ex, op, add_fq_layernorm, y->data, q ? q->data : NULL, s, stats, stats + rows, a->data, r->data,
                   gamma ? gamma->data : NULL, beta ? beta->data : NULL, rows, h, eps, &pa, &pr, &py))
        return NULL;
    qb_tensor *in[4] = {a, r, gamma, beta};
    qb_node *n = qb_record(ctx, op, add_fq_layernorm_backward, y, in, 4);
    if (n) {
        n->saved[0] = stats;
        n->saved[1] = s;
        n->f[0] = eps;
    }
    if (q) {
        qb_node *nq = qb_record(ctx, "fake_quant", out_fq_backward, q, &y, 1);
        if (nq) nq->saved[0] = amax + 2;
        *yq = q;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

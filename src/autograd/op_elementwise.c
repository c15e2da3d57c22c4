/* op_elementwise.c: add, sub, mul (b broadcast against a), scale and bias add, forward and backward (CPU). */
#include "autograd/op_internal.h"
#include "autograd/simd_math.h"

typedef enum { EW_ADD, EW_SUB, EW_MUL } ew_kind;

/* Strides of b aligned to a's dims, 0 where b broadcasts; -1 when b cannot broadcast to a. */
static int broadcast_strides(const qb_tensor *a, const qb_tensor *b, int64_t *bst) {
    if (b->ndim > a->ndim) return -1;
    int off = a->ndim - b->ndim;
    for (int d = 0; d < a->ndim; d++) {
        if (d < off) {
            bst[d] = 0;
            continue;
        }
        int64_t bs = b->shape[d - off];
        if (bs == a->shape[d]) bst[d] = b->stride[d - off];
        else if (bs == 1) bst[d] = 0;
        else return -1;
    }
    return 0;
}

/* Offset into b of a's flat (row-major) element index i. */
static inline int64_t bcast_offset(int64_t i, int nd, const int64_t *shape, const int64_t *bst) {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += (i % shape[d]) * bst[d];
        i /= shape[d];
    }
    return off;
}

/* b covers a's trailing elements exactly (same shape or a suffix of a's shape, contiguous). */
static bool is_suffix(const qb_tensor *a, const qb_tensor *b) {
    if (!qb_is_contiguous(b) || b->ndim > a->ndim) return false;
    for (int d = 0; d < b->ndim; d++)
        if (b->shape[d] != a->shape[a->ndim - b->ndim + d]) return false;
    return true;
}

static inline float ew_apply(ew_kind kind, float a, float b) {
    return kind == EW_ADD ? a + b : kind == EW_SUB ? a - b : a * b;
}

/* y = a (op) b: b the same size as a, repeating over a's rows (suffix), or broadcast by strides bst. */
QB_MULTIVERSION static void ew_forward_cpu(ew_kind kind, float *restrict y, const float *restrict a, const float *restrict b, int64_t cnt,
                                           int64_t nb, bool flat, const qb_tensor *at, const int64_t *bst) {
    if (flat) {
        int64_t rows = cnt / (nb ? nb : 1);
#pragma omp parallel for schedule(static) if (cnt > 65536)
        for (int64_t r = 0; r < rows; r++)
#pragma omp simd
            for (int64_t j = 0; j < nb; j++) y[r * nb + j] = ew_apply(kind, a[r * nb + j], b[j]);
        return;
    }
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) y[i] = ew_apply(kind, a[i], b[bcast_offset(i, at->ndim, at->shape, bst)]);
}

static void ew_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    ew_kind kind = (ew_kind)n->i[0];
    int64_t cnt = qb_numel(y);
    const float *dy = y->grad->data;
    /* b first: with overwrite, a's gradient takes over dy's buffer */
    if (b->requires_grad) {
        qb_tensor *db = qb_grad(ctx, b);
        if (!db) return;
        float sign = kind == EW_SUB ? -1.0f : 1.0f;
        int64_t nb = qb_numel(b);
        float *g = db->data;
        if (nb == cnt) {
#pragma omp parallel for schedule(static) if (cnt > 65536)
            for (int64_t i = 0; i < cnt; i++) g[i] += sign * dy[i] * (kind == EW_MUL ? a->data[i] : 1.0f);
        } else if (is_suffix(a, b)) {
            int64_t rows = cnt / nb;
#pragma omp parallel for schedule(static) if (cnt > 65536)
            for (int64_t j = 0; j < nb; j++) {
                float s = 0.0f;
                for (int64_t r = 0; r < rows; r++) s += dy[r * nb + j] * (kind == EW_MUL ? a->data[r * nb + j] : 1.0f);
                g[j] += sign * s;
            }
        } else {
            /* general broadcast: db is contiguous in b's shape, so accumulate through b's contiguous strides */
            qb_tensor bc = *b;
            qb_set_contiguous_strides(&bc);
            int64_t bst[QB_MAX_DIMS];
            broadcast_strides(a, &bc, bst);
            for (int64_t i = 0; i < cnt; i++)
                g[bcast_offset(i, a->ndim, a->shape, bst)] += sign * dy[i] * (kind == EW_MUL ? a->data[i] : 1.0f);
        }
    }
    if (a->requires_grad) {
        bool overwrite;
        qb_tensor *da = qb_grad_reuse(ctx, a, y, &overwrite);
        if (!da) return;
        if (kind == EW_MUL) {
            int64_t bst[QB_MAX_DIMS];
            broadcast_strides(a, b, bst);
            float *g = da->data, keep = overwrite ? 0.0f : 1.0f;
#pragma omp parallel for schedule(static) if (cnt > 65536)
            for (int64_t i = 0; i < cnt; i++) g[i] = keep * g[i] + dy[i] * b->data[bcast_offset(i, a->ndim, a->shape, bst)];
        } else if (!overwrite) {
            qb_accumulate(da->data, dy, cnt);
        }
    }
}

static qb_tensor *elementwise(qb_ctx *ctx, const char *op, ew_kind kind, qb_tensor *a, qb_tensor *b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, op, a);
    int64_t bst[QB_MAX_DIMS];
    if (broadcast_strides(a, b, bst))
        return qb_errorf(&ctx->err, "%s: shapes %s and %s do not broadcast (b must broadcast to a)", op, QB_SHAPES(a, b)), NULL;
    a = qb_contiguous(ctx, a);
    if (!a) return NULL;
    if (qb_numel(b) == qb_numel(a) || is_suffix(a, b)) {
        b = qb_contiguous(ctx, b);
        if (!b) return NULL;
    }
    broadcast_strides(a, b, bst);
    qb_tensor *y = qb_new_like(ctx, a);
    if (!y) return NULL;
    int64_t cnt = qb_numel(a), nb = qb_numel(b);
    ew_forward_cpu(kind, y->data, a->data, b->data, cnt, nb, qb_is_contiguous(b) && (nb == cnt || is_suffix(a, b)), a, bst);
    qb_tensor *in[2] = {a, b};
    qb_node *n = qb_record(ctx, op, ew_backward, y, in, 2);
    if (n) n->i[0] = kind;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_add(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "add", EW_ADD, a, b); }
qb_tensor *qb_sub(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "sub", EW_SUB, a, b); }
qb_tensor *qb_mul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "mul", EW_MUL, a, b); }

qb_tensor *qb_bias_add(qb_ctx *ctx, qb_tensor *x, qb_tensor *bias) {
    QB_OP_BEGIN(ctx, x, bias);
    QB_SHAPE_BUFS;
    if (bias->ndim != 1 || x->ndim < 1 || x->shape[x->ndim - 1] != bias->shape[0])
        return qb_errorf(&ctx->err, "bias_add: bias %s does not match the last dim of %s", QB_SHAPES(bias, x)), NULL;
    return elementwise(ctx, "bias_add", EW_ADD, x, bias);
}

/* ---- scale: y = x * s (saved: f[0] = s) */

static void scale_backward(qb_ctx *ctx, qb_node *n) {
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, n->in[0], n->out, &overwrite);
    if (!dx) return;
    int64_t cnt = qb_numel(n->out);
    float *g = dx->data, s = n->f[0];
    const float *dy = n->out->grad->data;
    if (!overwrite) {
        qb_accumulate_scaled(g, dy, s, cnt);
        return;
    }
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) g[i] = dy[i] * s;
}

qb_tensor *qb_scale(qb_ctx *ctx, qb_tensor *x, float s) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_CPU_ONLY(ctx, "scale", x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) y->data[i] = x->data[i] * s;
    qb_node *n = qb_record(ctx, "scale", scale_backward, y, &x, 1);
    if (n) n->f[0] = s;
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* op_shape.c: reshape, permute, transpose, slice, contiguous, split/merge of attention heads.
 * Views share the input's storage; their gradients are contiguous and are added back through the view's mapping
 * (kernels: cpu/shape.c). */
#include <string.h>
#include "autograd/op_internal.h"

/* A tensor struct sharing x's data (caller sets shape/strides). */
static qb_tensor *view_of(qb_ctx *ctx, const qb_tensor *x) {
    qb_tensor *v = qb_meta_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *x;
    v->grad = NULL;
    v->node = NULL;
    v->requires_grad = false;
    v->is_param = false;
    v->grad_given = false;
    v->name = NULL;
    v->bf16 = NULL;
    v->owns_data = v->gemm_input = false;
    return v;
}

/* ---- contiguous: y = row-major copy of x; backward adds dy into dx element for element */

static void flat_backward(qb_ctx *ctx, qb_node *n) {
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, n->in[0], n->out, &overwrite);
    if (dx && !overwrite) QB_KERNEL(ctx, n->op, axpy, dx->data, n->out->grad->data, 1.0f, qb_numel(n->out));
}

qb_tensor *qb_contiguous(qb_ctx *ctx, qb_tensor *x) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "contiguous", x);
    if (qb_is_contiguous(x)) return x;
    qb_tensor *y = qb_new_like(ctx, x);
    if (!y || QB_KERNEL(ctx, "contiguous", copy_strided, y->data, x->data, x->ndim, x->shape, x->stride)) return NULL;
    qb_record(ctx, "contiguous", flat_backward, y, &x, 1);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- reshape (a view of a contiguous input) */

qb_tensor *qb_reshape(qb_ctx *ctx, qb_tensor *x, int ndim, const int64_t *shape) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    if (ndim < 1 || ndim > QB_MAX_DIMS) return qb_errorf(&ctx->err, "reshape: %d dims requested (1 to %d)", ndim, QB_MAX_DIMS), NULL;
    int64_t want[QB_MAX_DIMS], prod = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        want[d] = shape[d];
        if (shape[d] == -1 && infer < 0) infer = d;
        else if (shape[d] < 0) return qb_errorf(&ctx->err, "reshape: bad size %ld in dim %d", (long)shape[d], d), NULL;
        else prod *= shape[d];
    }
    QB_OP_DEVICES(ctx, "reshape", x);
    int64_t cnt = qb_numel(x);
    if (infer >= 0) want[infer] = prod ? cnt / prod : 0;
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) total *= want[d];
    qb_tensor tmp = {.ndim = ndim};
    memcpy(tmp.shape, want, sizeof want);
    if (total != cnt)
        return qb_errorf(&ctx->err, "reshape: cannot view %s (%ld elements) as %s", qb_shape_str(x, qb_sa_, sizeof qb_sa_), (long)cnt, qb_shape_str(&tmp, qb_sb_, sizeof qb_sb_)), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? view_of(ctx, x) : NULL;
    if (!y) return NULL;
    y->ndim = ndim;
    memcpy(y->shape, want, sizeof want);
    qb_set_contiguous_strides(y);
    qb_record(ctx, "reshape", flat_backward, y, &x, 1);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- permute (a view). saved: i[0..3] = perm */

static void permute_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    int64_t st[QB_MAX_DIMS];
    for (int d = 0; d < y->ndim; d++) st[d] = dx->stride[n->i[d]];
    QB_KERNEL(ctx, "permute", accumulate_strided, dx->data, st, y->grad->data, y->ndim, y->shape);
}

qb_tensor *qb_permute(qb_ctx *ctx, qb_tensor *x, const int *perm) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "permute", x);
    bool seen[QB_MAX_DIMS] = {false};
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]])
            return qb_errorf(&ctx->err, "permute: dim order is not a permutation of %d dims (entry %d = %d)", x->ndim, d, perm[d]), NULL;
        seen[perm[d]] = true;
    }
    qb_tensor *y = view_of(ctx, x);
    if (!y) return NULL;
    for (int d = 0; d < x->ndim; d++) {
        y->shape[d] = x->shape[perm[d]];
        y->stride[d] = x->stride[perm[d]];
    }
    qb_node *n = qb_record(ctx, "permute", permute_backward, y, &x, 1);
    if (n)
        for (int d = 0; d < x->ndim; d++) n->i[d] = perm[d];
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_transpose(qb_ctx *ctx, qb_tensor *x, int d0, int d1) {
    QB_OP_BEGIN(ctx, x);
    if (d0 < 0) d0 += x->ndim;
    if (d1 < 0) d1 += x->ndim;
    if (d0 < 0 || d1 < 0 || d0 >= x->ndim || d1 >= x->ndim)
        return qb_errorf(&ctx->err, "transpose: dims %d, %d out of range for %d dims", d0, d1, x->ndim), NULL;
    int perm[QB_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[d0] = d1;
    perm[d1] = d0;
    return qb_permute(ctx, x, perm);
}

/* ---- slice (a view). saved: i[0] = dim, i[1] = start */

static void slice_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    float *dst = dx->data + n->i[1] * dx->stride[n->i[0]];
    QB_KERNEL(ctx, "slice", accumulate_strided, dst, dx->stride, y->grad->data, y->ndim, y->shape);
}

qb_tensor *qb_slice(qb_ctx *ctx, qb_tensor *x, int dim, int64_t start, int64_t len) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "slice", x);
    if (dim < 0) dim += x->ndim;
    if (dim < 0 || dim >= x->ndim) return qb_errorf(&ctx->err, "slice: dim %d out of range for %s", dim, qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    if (start < 0 || len < 0 || start + len > x->shape[dim])
        return qb_errorf(&ctx->err, "slice: [%ld, %ld) is outside dim %d of %s", (long)start, (long)(start + len), dim,
                         qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    qb_tensor *y = view_of(ctx, x);
    if (!y) return NULL;
    y->data = x->data + start * x->stride[dim];
    y->shape[dim] = len;
    qb_node *n = qb_record(ctx, "slice", slice_backward, y, &x, 1);
    if (n) {
        n->i[0] = dim;
        n->i[1] = start;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- attention heads */

qb_tensor *qb_split_heads(qb_ctx *ctx, qb_tensor *x, int n_heads) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    if (x->ndim != 3 || n_heads <= 0 || x->shape[2] % n_heads)
        return qb_errorf(&ctx->err, "split_heads: input %s is not [B, S, H] with H divisible by %d heads", qb_shape_str(x, qb_sa_, sizeof qb_sa_), n_heads), NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], n_heads, x->shape[2] / n_heads};
    static const int perm[4] = {0, 2, 1, 3};
    return qb_permute(ctx, qb_reshape(ctx, x, 4, shape), perm);
}

qb_tensor *qb_merge_heads(qb_ctx *ctx, qb_tensor *x) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    if (x->ndim != 4) return qb_errorf(&ctx->err, "merge_heads: input %s is not [B, N, S, D]", qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t shape[3] = {x->shape[0], x->shape[2], x->shape[1] * x->shape[3]};
    return qb_reshape(ctx, qb_contiguous(ctx, qb_permute(ctx, x, perm)), 3, shape);
}

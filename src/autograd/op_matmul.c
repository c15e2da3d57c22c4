/* op_matmul.c: matmul (batched, with transposes) and linear, forward and backward, CPU via OpenBLAS sgemm. */
#include "autograd/op_internal.h"

/* Batches of small products run one sgemm per thread (OpenBLAS runs single-threaded inside a parallel region)
 * instead of one multi-threaded sgemm after another; each batch writes its own output. */
#define SMALL_GEMM_FLOPS (1 << 22)

/* ---- matmul: C[..., M, N] = op(A) op(B)
 * saved: i[0] = trans_a, i[1] = trans_b, i[2] = batch count, i[3] = B shared (2-d) */

/* Pointer to inner matrix `bi` (flat batch index over the leading dims) of t. */
static float *batch_ptr(const qb_tensor *t, int64_t bi) {
    int nb = t->ndim - 2;
    int64_t off = 0;
    for (int d = nb - 1; d >= 0; d--) {
        off += (bi % t->shape[d]) * t->stride[d];
        bi /= t->shape[d];
    }
    return t->data + off;
}

static void matmul_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    bool ta = n->i[0], tb = n->i[1], shared = n->i[3];
    int64_t batch = n->i[2];
    int nd = a->ndim;
    int64_t m = c->shape[nd - 2], nn = c->shape[nd - 1];
    int64_t k = ta ? a->shape[nd - 2] : a->shape[nd - 1];
    qb_tensor *dc = c->grad;
    if (a->requires_grad) {
        bool fresh;
        qb_tensor *da = qb_grad_for_write(ctx, a, &fresh);
        if (!da) return;
        float beta = fresh ? 0.0f : 1.0f;
        int64_t lda_g = da->stride[nd - 2];
#pragma omp parallel for schedule(static) if (batch > 1 && m * nn * k < SMALL_GEMM_FLOPS)
        for (int64_t bi = 0; bi < batch; bi++) {
            const float *bp = shared ? b->data : batch_ptr(b, bi);
            int64_t ldb = b->stride[b->ndim - 2];
            const float *g = dc->data + bi * m * nn;
            float *dap = da->data + bi * (ta ? k * m : m * k);
            if (!ta)  /* dA[M,K] += dC[M,N] @ op(B)^T */
                qb_gemm_cpu(false, !tb, m, k, nn, 1.0f, g, nn, bp, ldb, beta, dap, lda_g);
            else      /* dA[K,M] += op(B) @ dC^T */
                qb_gemm_cpu(tb, true, k, m, nn, 1.0f, bp, ldb, g, nn, beta, dap, lda_g);
        }
    }
    if (b->requires_grad) {
        bool fresh;
        qb_tensor *db = qb_grad_for_write(ctx, b, &fresh);
        if (!db) return;
        int64_t ldb_g = db->stride[db->ndim - 2];
        int64_t bsz = b->shape[b->ndim - 2] * b->shape[b->ndim - 1];
#pragma omp parallel for schedule(static) if (!shared && batch > 1 && m * nn * k < SMALL_GEMM_FLOPS)
        for (int64_t bi = 0; bi < batch; bi++) {
            const float *ap = batch_ptr(a, bi);
            int64_t lda = a->stride[nd - 2];
            const float *g = dc->data + bi * m * nn;
            float *dbp = db->data + (shared ? 0 : bi * bsz);
            float beta = fresh && (!shared || bi == 0) ? 0.0f : 1.0f;  /* a shared B sums every batch */
            if (!tb)  /* dB[K,N] += op(A)^T @ dC */
                qb_gemm_cpu(!ta, false, k, nn, m, 1.0f, ap, lda, g, nn, beta, dbp, ldb_g);
            else      /* dB[N,K] += dC^T @ op(A) */
                qb_gemm_cpu(true, ta, nn, k, m, 1.0f, g, nn, ap, lda, beta, dbp, ldb_g);
        }
    }
}

qb_tensor *qb_matmul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b, bool trans_a, bool trans_b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "matmul", a);
    if (a->ndim < 2 || b->ndim < 2)
        return qb_errorf(&ctx->err, "matmul: need at least 2 dims, got %s @ %s", QB_SHAPES(a, b)), NULL;
    int nd = a->ndim;
    bool shared = b->ndim == 2;
    if (!shared) {
        bool ok = b->ndim == nd;
        for (int d = 0; ok && d < nd - 2; d++) ok = a->shape[d] == b->shape[d];
        if (!ok) return qb_errorf(&ctx->err, "matmul: batch dims differ: %s @ %s", QB_SHAPES(a, b)), NULL;
    }
    int64_t m = trans_a ? a->shape[nd - 1] : a->shape[nd - 2];
    int64_t k = trans_a ? a->shape[nd - 2] : a->shape[nd - 1];
    int64_t kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t nn = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (k != kb)
        return qb_errorf(&ctx->err, "matmul: inner dims differ: %s%s @ %s%s (K %ld vs %ld)", qb_shape_str(a, qb_sa_, sizeof qb_sa_),
                         trans_a ? "^T" : "", qb_shape_str(b, qb_sb_, sizeof qb_sb_), trans_b ? "^T" : "", (long)k, (long)kb), NULL;
    if (a->stride[nd - 1] != 1) a = qb_contiguous(ctx, a);
    if (b->stride[b->ndim - 1] != 1) b = qb_contiguous(ctx, b);
    if (!a || !b) return NULL;
    int64_t shape[QB_MAX_DIMS];
    for (int d = 0; d < nd - 2; d++) shape[d] = a->shape[d];
    shape[nd - 2] = m;
    shape[nd - 1] = nn;
    qb_tensor *c = qb_new(ctx, nd, shape);
    if (!c) return NULL;
    int64_t batch = 1;
    for (int d = 0; d < nd - 2; d++) batch *= a->shape[d];
    int64_t lda = a->stride[nd - 2], ldb = b->stride[b->ndim - 2];
    if (shared && !trans_a && qb_is_contiguous(a)) {
        qb_gemm_cpu(false, trans_b, batch * m, nn, k, 1.0f, a->data, lda, b->data, ldb, 0.0f, c->data, nn);
    } else {
#pragma omp parallel for schedule(static) if (batch > 1 && m * nn * k < SMALL_GEMM_FLOPS)
        for (int64_t bi = 0; bi < batch; bi++)
            qb_gemm_cpu(trans_a, trans_b, m, nn, k, 1.0f, batch_ptr(a, bi), lda, shared ? b->data : batch_ptr(b, bi), ldb,
                        0.0f, c->data + bi * m * nn, nn);
    }
    qb_tensor *in[2] = {a, b};
    qb_node *n = qb_record(ctx, "matmul", matmul_backward, c, in, 2);
    if (n) {
        n->i[0] = trans_a;
        n->i[1] = trans_b;
        n->i[2] = batch;
        n->i[3] = shared;
    }
    return qb_ctx_failed(ctx) ? NULL : c;
}

/* ---- linear: y[R, O] = x[R, I] @ W[O, I]^T + bias[O] */

static void linear_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2], *y = n->out;
    int64_t in = w->shape[1], out = w->shape[0], rows = qb_numel(x) / in;
    const float *dy = y->grad->data;
    bool fresh;
    if (x->requires_grad) {
        qb_tensor *dx = qb_grad_for_write(ctx, x, &fresh);
        if (!dx) return;
        qb_gemm_cpu(false, false, rows, in, out, 1.0f, dy, out, w->data, in, fresh ? 0.0f : 1.0f, dx->data, in);
    }
    if (w->requires_grad) {
        qb_tensor *dw = qb_grad_for_write(ctx, w, &fresh);
        if (!dw) return;
        qb_gemm_cpu(true, false, out, in, rows, 1.0f, dy, out, x->data, in, fresh ? 0.0f : 1.0f, dw->data, in);
    }
    if (bias && bias->requires_grad) {
        qb_tensor *db = qb_grad(ctx, bias);
        if (!db) return;
        float *dbp = db->data;
#pragma omp parallel for schedule(static) if (rows * out > 65536)
        for (int64_t o0 = 0; o0 < out; o0 += 64) {
            int64_t o1 = o0 + 64 < out ? o0 + 64 : out;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t o = o0; o < o1; o++) dbp[o] += dy[r * out + o];
        }
    }
}

qb_tensor *qb_linear(qb_ctx *ctx, qb_tensor *x, qb_tensor *w, qb_tensor *bias) {
    QB_OP_BEGIN(ctx, x, w);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "linear", x);
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return qb_errorf(&ctx->err, "linear: input %s does not match weight %s (want [..., in] and [out, in])", QB_SHAPES(x, w)), NULL;
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return qb_errorf(&ctx->err, "linear: bias %s does not match weight %s", QB_SHAPES(bias, w)), NULL;
    x = qb_contiguous(ctx, x);
    w = qb_contiguous(ctx, w);
    if (!x || !w) return NULL;
    int64_t in = w->shape[1], out = w->shape[0], rows = qb_numel(x) / (in ? in : 1);
    int64_t shape[QB_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = out;
    qb_tensor *y = qb_new(ctx, x->ndim, shape);
    if (!y) return NULL;
    float beta = 0.0f;
    if (bias) {
        float *yp = y->data;
        const float *bp = bias->data;
#pragma omp parallel for schedule(static) if (rows * out > 65536)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++) yp[r * out + o] = bp[o];
        beta = 1.0f;
    }
    qb_gemm_cpu(false, true, rows, out, in, 1.0f, x->data, in, w->data, in, beta, y->data, out);
    qb_tensor *inputs[3] = {x, w, bias};
    qb_record(ctx, "linear", linear_backward, y, inputs, 3);
    return qb_ctx_failed(ctx) ? NULL : y;
}

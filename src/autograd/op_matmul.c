/* op_matmul.c: matmul (batched, with transposes) and linear (kernels: cpu/matmul.c). */
#include "autograd/op_internal.h"

/* ---- matmul: C[..., M, N] = op(A) op(B)
 * saved: i[0] = trans_a, i[1] = trans_b, i[2] = batch count, i[3] = B shared (2-d); saved[0] = A's bf16 copy (below)
 * Under precision bf16, when recorded and A is marked (qb_mark_gemm_input) or has a bf16 copy: the forward runs on A's
 * bf16 copy (kept on A) and B cast for it, dB on that copy and dC cast; dA as without it (fp32 operands rounded inside).
 * The casts of fp32 operands are step memory handed back after their GEMM. */

/* One product in the context's GEMM precision. */
static qb_gemm_batch one_product(const qb_ctx *ctx) {
    return (qb_gemm_batch){{1, 1}, {0, 0}, {0, 0}, {0, 0}, ctx->precision, false, false, ctx->cpu_gemm};
}

/* Elements an operand of rows x cols matrices (leading dim ld, batch offsets off) spans from its first. */
static int64_t operand_span(const int64_t count[2], const int64_t off[2], int64_t rows, int64_t cols, int64_t ld) {
    if (count[0] <= 0 || count[1] <= 0 || rows <= 0 || cols <= 0) return 0;
    return (count[0] - 1) * off[0] + (count[1] - 1) * off[1] + (rows - 1) * ld + cols;
}

/* The gemm entry on bf16 operands: a (or b) is bf16 already when a_is_bf16 (b_is_bf16), else its span (op(A) [m, k] /
 * op(B) [k, n] over bt's batch) is cast into step memory handed back after the GEMM. */
static int gemm_bf16_operands(qb_ctx *ctx, const char *op, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                              bool a_is_bf16, int64_t lda, const void *b, bool b_is_bf16, int64_t ldb, float beta, float *c, int64_t ldc,
                              const qb_gemm_batch *bt) {
    qb_gemm_batch both = *bt;
    both.a_bf16 = both.b_bf16 = true;
    int64_t na = a_is_bf16 ? 0 : operand_span(bt->count, bt->a, ta ? k : m, ta ? m : k, lda);
    int64_t nb = b_is_bf16 ? 0 : operand_span(bt->count, bt->b, tb ? n : k, tb ? k : n, ldb);
    uint16_t *ac = NULL, *bc = NULL;
    int rc = -1;
    if (!a_is_bf16 && (!(ac = qb_act_alloc(ctx, (size_t)na * sizeof *ac)) || QB_KERNEL(ctx, op, cast_bf16, ac, a, na))) goto out;
    if (!b_is_bf16 && (!(bc = qb_act_alloc(ctx, (size_t)nb * sizeof *bc)) || QB_KERNEL(ctx, op, cast_bf16, bc, b, nb))) goto out;
    rc = QB_KERNEL(ctx, op, gemm, ta, tb, m, n, k, 1.0f, ac ? ac : a, lda, bc ? bc : b, ldb, beta, c, ldc, &both);
out:
    qb_act_release(ctx, bc, (size_t)nb * sizeof *bc);
    qb_act_release(ctx, ac, (size_t)na * sizeof *ac);
    return rc;
}

/* True when a recorded product under bf16 runs on A's bf16 copy: A is marked (qb_mark_gemm_input) or has one. */
static bool bf16_wanted(const qb_ctx *ctx, const qb_tensor *a, qb_tensor *const *in, int n_in) {
    return ctx->precision == QB_PREC_BF16 && (a->gemm_input || a->bf16) && qb_needs_grad(ctx, in, n_in);
}

/* A's bf16 copy where bf16_wanted, else NULL. */
static uint16_t *bf16_input(qb_ctx *ctx, qb_tensor *a, qb_tensor *const *in, int n_in, bool *failed) {
    *failed = false;
    if (!bf16_wanted(ctx, a, in, n_in)) return NULL;
    uint16_t *ab = qb_bf16_copy(ctx, a);
    *failed = !ab;
    return ab;
}

/* The batch dims of t (up to two leading dims, right-aligned) as counts and element offsets. */
static void batch_dims(const qb_tensor *t, int64_t count[2], int64_t off[2]) {
    int nb = t->ndim - 2;
    count[0] = count[1] = 1;
    off[0] = off[1] = 0;
    for (int d = 0; d < nb; d++) {
        count[2 - nb + d] = t->shape[d];
        off[2 - nb + d] = t->stride[d];
    }
}

/* Offsets between consecutive products of a contiguous batch of matrices of `size` elements each. */
static void dense_offsets(const int64_t count[2], int64_t size, int64_t off[2]) {
    off[1] = size;
    off[0] = count[1] * size;
}

void qb_matmul_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    bool ta = n->i[0], tb = n->i[1], shared = n->i[3];
    int nd = a->ndim;
    int64_t m = c->shape[nd - 2], nn = c->shape[nd - 1];
    int64_t k = ta ? a->shape[nd - 2] : a->shape[nd - 1];
    qb_gemm_batch bt = one_product(ctx);
    int64_t a_off[2], b_off[2] = {0, 0}, dc_off[2];
    batch_dims(a, bt.count, a_off);
    if (!shared) batch_dims(b, bt.count, b_off);
    dense_offsets(bt.count, m * nn, dc_off);
    int64_t ldb = b->stride[b->ndim - 2], lda = a->stride[nd - 2];
    const float *dc = c->grad->data;
    if (a->requires_grad) {
        bool fresh;
        qb_tensor *da = qb_grad_for_write(ctx, a, &fresh);
        if (!da) return;
        int64_t lda_g = da->stride[nd - 2];
        for (int d = 0; d < 2; d++) {  /* !ta: A = dC, B = B; ta: A = B, B = dC */
            bt.a[d] = ta ? b_off[d] : dc_off[d];
            bt.b[d] = ta ? dc_off[d] : b_off[d];
        }
        dense_offsets(bt.count, k * m, bt.c);
        int rc = !ta  /* dA[M,K] += dC[M,N] @ op(B)^T */
                     ? QB_KERNEL(ctx, "matmul", gemm, false, !tb, m, k, nn, 1.0f, dc, nn, b->data, ldb, fresh ? 0.0f : 1.0f, da->data, lda_g, &bt)
                     /* dA[K,M] += op(B) @ dC^T */
                     : QB_KERNEL(ctx, "matmul", gemm, tb, true, k, m, nn, 1.0f, b->data, ldb, dc, nn, fresh ? 0.0f : 1.0f, da->data, lda_g, &bt);
        if (rc) return;
    }
    if (b->requires_grad) {
        bool fresh;
        qb_tensor *db = qb_grad_for_write(ctx, b, &fresh);
        if (!db) return;
        int64_t ldb_g = db->stride[db->ndim - 2];
        int64_t bsz = b->shape[b->ndim - 2] * b->shape[b->ndim - 1];
        if (shared) bt.c[0] = bt.c[1] = 0;  /* a shared B sums every batch (and is zero with no batch) */
        else dense_offsets(bt.count, bsz, bt.c);
        for (int d = 0; d < 2; d++) bt.b[d] = dc_off[d];
        const void *a16 = n->saved[0]; /* A's bf16 copy (contiguous: lda as A's) */
        if (!tb) {  /* dB[K,N] += op(A)^T @ dC */
            for (int d = 0; d < 2; d++) bt.a[d] = a_off[d];
            if (a16) gemm_bf16_operands(ctx, "matmul", !ta, false, k, nn, m, a16, true, lda, dc, false, nn, fresh ? 0.0f : 1.0f, db->data, ldb_g, &bt);
            else QB_KERNEL(ctx, "matmul", gemm, !ta, false, k, nn, m, 1.0f, a->data, lda, dc, nn, fresh ? 0.0f : 1.0f, db->data, ldb_g, &bt);
        } else {    /* dB[N,K] += dC^T @ op(A) */
            qb_gemm_batch bs = bt;
            for (int d = 0; d < 2; d++) {
                bs.a[d] = dc_off[d];
                bs.b[d] = a_off[d];
            }
            if (a16) gemm_bf16_operands(ctx, "matmul", true, ta, nn, k, m, dc, false, nn, a16, true, lda, fresh ? 0.0f : 1.0f, db->data, ldb_g, &bs);
            else QB_KERNEL(ctx, "matmul", gemm, true, ta, nn, k, m, 1.0f, dc, nn, a->data, lda, fresh ? 0.0f : 1.0f, db->data, ldb_g, &bs);
        }
    }
}

qb_tensor *qb_matmul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b, bool trans_a, bool trans_b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "matmul", a, b);
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
    qb_gemm_batch bt = one_product(ctx);
    batch_dims(a, bt.count, bt.a);
    int64_t batch = bt.count[0] * bt.count[1];
    int64_t lda = a->stride[nd - 2], ldb = b->stride[b->ndim - 2];
    qb_tensor *in[2] = {a, b};
    bool failed = false;
    uint16_t *a16 = qb_is_contiguous(a) ? bf16_input(ctx, a, in, 2, &failed) : NULL;
    if (failed) return NULL;
    int rc;
    if (shared && !trans_a && qb_is_contiguous(a)) {  /* one product over all rows */
        qb_gemm_batch one = one_product(ctx);
        rc = a16 ? gemm_bf16_operands(ctx, "matmul", false, trans_b, batch * m, nn, k, a16, true, lda, b->data, false, ldb, 0.0f, c->data, nn, &one)
                 : QB_KERNEL(ctx, "matmul", gemm, false, trans_b, batch * m, nn, k, 1.0f, a->data, lda, b->data, ldb, 0.0f, c->data, nn, &one);
    } else {
        if (!shared) batch_dims(b, bt.count, bt.b);
        dense_offsets(bt.count, m * nn, bt.c);
        rc = a16 ? gemm_bf16_operands(ctx, "matmul", trans_a, trans_b, m, nn, k, a16, true, lda, b->data, false, ldb, 0.0f, c->data, nn, &bt)
                 : QB_KERNEL(ctx, "matmul", gemm, trans_a, trans_b, m, nn, k, 1.0f, a->data, lda, b->data, ldb, 0.0f, c->data, nn, &bt);
    }
    if (rc) return NULL;
    qb_node *n = qb_record(ctx, "matmul", qb_matmul_backward, c, in, 2);
    if (n) {
        n->saved[0] = a16;
        n->i[0] = trans_a;
        n->i[1] = trans_b;
        n->i[2] = batch;
        n->i[3] = shared;
    }
    return qb_ctx_failed(ctx) ? NULL : c;
}

/* ---- linear: y[R, O] = x[R, I] @ W[O, I]^T + bias[O]
 * Under precision bf16, when recorded and x is marked (qb_mark_gemm_input) or has a bf16 copy: the forward GEMM runs
 * on x's bf16 copy (qb_bf16_copy, kept on x) and W cast for it (step memory, handed back after it); saved[0] = x's copy,
 * the dW GEMM's operand (dY cast the same way, handed back after), so that x's fp32 memory can go (qb_release_f32).
 * Every GEMM rounds fp32 operands to bf16 the same way, so the results are those of fp32 operands under bf16. The
 * epilogues (gemm_epilogue) take fp32 operands only: with a bf16 copy the bias is bias_rows + the bf16-operand GEMM. */

/* R: the product of x's leading dims (also when I is 0). */
static int64_t linear_rows(const qb_tensor *x) {
    int64_t rows = 1;
    for (int d = 0; d < x->ndim - 1; d++) rows *= x->shape[d];
    return rows;
}

/* True when the linear's GEMMs do its bias work in their epilogues (the device has gemm_epilogue, ctx->gemm_epilogue). */
static bool epilogue_on(const qb_ctx *ctx) { return ctx->gemm_epilogue && ctx->k->gemm_epilogue; }

/* The gradients of y = x W^T + bias from dy [rows, out]: dx, dW (on x16, x's bf16 copy, where saved, else on
 * qb_saved_data(x); the bias gradient in its epilogue where on), dbias. */
static void linear_grads(qb_ctx *ctx, qb_tensor *x, const uint16_t *x16, qb_tensor *w, qb_tensor *bias, const float *dy) {
    int64_t in = w->shape[1], out = w->shape[0], rows = linear_rows(x);
    qb_gemm_batch one = one_product(ctx);
    bool fresh, bias_grad = bias && bias->requires_grad, bias_done = false;
    if (x->requires_grad) {
        qb_tensor *dx = qb_grad_for_write(ctx, x, &fresh);
        if (!dx || QB_KERNEL(ctx, "linear", gemm, false, false, rows, in, out, 1.0f, dy, out, w->data, in, fresh ? 0.0f : 1.0f, dx->data,
                             in, &one))
            return;
    }
    if (w->requires_grad) {
        qb_tensor *dw = qb_grad_for_write(ctx, w, &fresh);
        if (!dw) return;
        if (x16) {  /* dW = dY^T x from x's bf16 copy (no epilogue on bf16 operands) */
            if (gemm_bf16_operands(ctx, "linear", true, false, out, in, rows, dy, false, out, x16, true, in, fresh ? 0.0f : 1.0f, dw->data,
                                   in, &one))
                return;
        } else {
            const float *xd = qb_saved_data(ctx, x);
            if (!xd) return;
            /* not in TF32 / BF16: the epilogue may sum the GEMM's rounded copy of dy (the emulator does), col_sum sums dy */
            if (bias_grad && epilogue_on(ctx) && ctx->precision == QB_PREC_FP32) {
                qb_tensor *db = qb_grad(ctx, bias);
                qb_gemm_epilogue ep = {.kind = QB_EPI_BGRAD, .bias_grad = db ? db->data : NULL};
                if (!db || QB_KERNEL(ctx, "linear", gemm_epilogue, true, false, out, in, rows, 1.0f, dy, out, xd, in, fresh ? 0.0f : 1.0f,
                                     dw->data, in, &ep))
                    return;
                bias_done = true;
            } else if (QB_KERNEL(ctx, "linear", gemm, true, false, out, in, rows, 1.0f, dy, out, xd, in, fresh ? 0.0f : 1.0f, dw->data, in,
                                  &one)) {
                return;
            }
        }
    }
    if (bias_grad && !bias_done) {
        qb_tensor *db = qb_grad(ctx, bias);
        if (db) QB_KERNEL(ctx, "linear", col_sum, db->data, dy, rows, out);
    }
}

void qb_linear_backward(qb_ctx *ctx, qb_node *n) { linear_grads(ctx, n->in[0], n->saved[0], n->in[1], n->in[2], n->out->grad->data); }

/* Checks linear's operands and makes *x, *w contiguous; 0 or -1 with ctx->err. */
static int linear_operands(qb_ctx *ctx, qb_tensor **x, qb_tensor **w, const qb_tensor *bias) {
    QB_SHAPE_BUFS;
    qb_tensor *a = *x, *b = *w;
    if (b->ndim != 2 || a->ndim < 1 || a->shape[a->ndim - 1] != b->shape[1])
        return qb_errorf(&ctx->err, "linear: input %s does not match weight %s (want [..., in] and [out, in])", QB_SHAPES(a, b));
    if (bias && (bias->ndim != 1 || bias->shape[0] != b->shape[0]))
        return qb_errorf(&ctx->err, "linear: bias %s does not match weight %s", QB_SHAPES(bias, b));
    *x = qb_contiguous(ctx, a);
    *w = qb_contiguous(ctx, b);
    return *x && *w ? 0 : -1;
}

/* A new [..., out] output of a linear on x. */
static qb_tensor *linear_output(qb_ctx *ctx, const qb_tensor *x, int64_t out) {
    int64_t shape[QB_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = out;
    return qb_new(ctx, x->ndim, shape);
}

qb_tensor *qb_linear(qb_ctx *ctx, qb_tensor *x, qb_tensor *w, qb_tensor *bias) {
    QB_OP_BEGIN(ctx, x, w);
    QB_OP_DEVICES(ctx, "linear", x, w, bias);
    if (linear_operands(ctx, &x, &w, bias)) return NULL;
    int64_t in = w->shape[1], out = w->shape[0], rows = linear_rows(x);
    qb_tensor *y = linear_output(ctx, x, out);
    if (!y) return NULL;
    qb_tensor *inputs[3] = {x, w, bias};
    qb_gemm_batch one = one_product(ctx);
    bool failed;
    uint16_t *xb = bf16_input(ctx, x, inputs, 3, &failed);
    if (failed) return NULL;
    int rc;
    if (bias && !xb && epilogue_on(ctx)) {  /* y = x W^T + bias: cuBLASLt's BIAS epilogue */
        qb_gemm_epilogue ep = {.kind = QB_EPI_BIAS, .bias = bias->data};
        rc = QB_KERNEL(ctx, "linear", gemm_epilogue, false, true, rows, out, in, 1.0f, x->data, in, w->data, in, 0.0f, y->data, out, &ep);
    } else {  /* y = bias, y += x W^T (on x's bf16 copy where it has one) */
        float beta = 0.0f;
        if (bias) {
            if (QB_KERNEL(ctx, "linear", bias_rows, y->data, bias->data, rows, out)) return NULL;
            beta = 1.0f;
        }
        rc = xb ? gemm_bf16_operands(ctx, "linear", false, true, rows, out, in, xb, true, in, w->data, false, in, beta, y->data, out, &one)
                : QB_KERNEL(ctx, "linear", gemm, false, true, rows, out, in, 1.0f, x->data, in, w->data, in, beta, y->data, out, &one);
    }
    if (rc) return NULL;
    qb_node *n = qb_record(ctx, "linear", qb_linear_backward, y, inputs, 3);
    if (n) n->saved[0] = xb;
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- linear with the tanh GELU in its epilogue: h = gelu_tanh(x W^T + bias). saved[0] = the pre-activation [R, O] */

static void linear_gelu_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *h = n->out;
    float *dpre = h->grad->data; /* d pre = dh gelu'(pre), in dh's buffer (no later node reads dh) */
    if (QB_KERNEL(ctx, n->op, unary_grad, QB_UNARY_GELU_TANH, 0.0f, dpre, dpre, n->saved[0], h->data, qb_numel(h))) return;
    linear_grads(ctx, n->in[0], NULL, n->in[1], n->in[2], dpre);
}

static qb_tensor *activation_of(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x) {
    switch (act) {
    case QB_UNARY_GELU: return qb_gelu(ctx, x);
    case QB_UNARY_GELU_TANH: return qb_gelu_tanh(ctx, x);
    case QB_UNARY_TANH: return qb_tanh(ctx, x);
    case QB_UNARY_RELU: return qb_relu(ctx, x);
    }
    return qb_errorf(&ctx->err, "linear_act: unknown activation %d", (int)act), NULL;
}

qb_tensor *qb_linear_act(qb_ctx *ctx, qb_tensor *x, qb_tensor *w, qb_tensor *bias, qb_unary_kind act) {
    qb_tensor *inputs[3] = {x, w, bias};
    if (act != QB_UNARY_GELU_TANH || !bias || !epilogue_on(ctx) || bf16_wanted(ctx, x, inputs, 3))
        return activation_of(ctx, act, qb_linear(ctx, x, w, bias));
    static const char op[] = "linear_gelu_tanh";
    QB_OP_BEGIN(ctx, x, w);
    QB_OP_DEVICES(ctx, op, x, w, bias);
    if (linear_operands(ctx, &x, &w, bias)) return NULL;
    int64_t in = w->shape[1], out = w->shape[0], rows = linear_rows(x);
    qb_tensor *h = linear_output(ctx, x, out);
    float *pre = h ? qb_act_alloc(ctx, (size_t)(rows * out) * sizeof(float)) : NULL;
    if (!pre) return NULL;
    qb_gemm_epilogue ep = {.kind = QB_EPI_BIAS_GELU_TANH, .bias = bias->data, .aux = pre};
    if (QB_KERNEL(ctx, op, gemm_epilogue, false, true, rows, out, in, 1.0f, x->data, in, w->data, in, 0.0f, h->data, out, &ep)) return NULL;
    inputs[0] = x;
    inputs[1] = w;
    qb_node *n = qb_record(ctx, op, linear_gelu_backward, h, inputs, 3);
    if (n) n->saved[0] = pre;
    return qb_ctx_failed(ctx) ? NULL : h;
}

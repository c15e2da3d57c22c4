/* op_int8_gemm.c: see op_int8_gemm.h (kernels: the quant table's quantize_s8, gemm_s8, dequant_s32). Code buffers and
 * the int32 sums live in step memory; the int32 sums go into the output's own buffer when no padding is needed. */
#include "quant/op_int8_gemm.h"

#include "autograd/op_internal.h"
#include "quant/quant_kernels.h"

/* IMMA's rule: n and k (and every leading dim) multiples of 4; the codes are padded with zeros. */
static int64_t pad4(int64_t v) { return (v + 3) / 4 * 4; }

bool qb_int8_gemm_supported(const quant_desc *d) { return d && !d->is_unsigned && d->num_bits >= 2 && d->num_bits <= 8; }

/* amax values checked (>= 0) and uploaded into step memory; NULL with ctx->err set. */
static const float *upload_amax(qb_ctx *ctx, const char *op, const float *amax, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(amax[i] >= 0.0f))
            return qb_errorf(&ctx->err, "%s: amax[%lld] = %g (must be >= 0)", op, (long long)i, (double)amax[i]), NULL;
    return qb_upload_f32(ctx, amax, n);
}

/* Codes of a matrix batch (view: {d0, d1, rows, cols} and strides) into new step memory [d0 * d1, rows_out, ld]. */
static int8_t *codes(qb_ctx *ctx, const qb_quant_exec *ex, const char *op, const float *x, const int64_t shape[4], const int64_t stride[4],
                     bool transpose, int64_t rows_out, int64_t ld, const float *amax_dev, int64_t n_amax, const quant_desc *d) {
    int8_t *q = qb_act_alloc(ctx, (size_t)(shape[0] * shape[1] * rows_out * ld));
    if (!q || QB_QKERNEL(&ctx->err, ex, op, quantize_s8, q, x, shape, stride, transpose, rows_out, ld, amax_dev, n_amax, quant_desc_qmin(d),
                         quant_desc_bound(d)))
        return NULL;
    return q;
}

/* y [batch, m, n] = the dequantized product of codes a [batch, m, kp] and b [batch, np, kp]. */
static int product(qb_ctx *ctx, const qb_quant_exec *ex, const char *op, qb_tensor *y, const int8_t *a, const int8_t *b, int64_t batch,
                   int64_t m, int64_t n, int64_t np, int64_t kp, const float *amax_a, const quant_desc *da, const float *amax_b,
                   int64_t n_amax_b, const quant_desc *db, const float *bias) {
    int32_t *acc = np == n ? (int32_t *)(void *)y->data : qb_act_alloc(ctx, (size_t)(batch * m * np) * sizeof(int32_t));
    if (!acc || QB_QKERNEL(&ctx->err, ex, op, gemm_s8, acc, a, b, m, np, kp, batch)) return -1;
    return QB_QKERNEL(&ctx->err, ex, op, dequant_s32, y->data, acc, batch, m, n, np, amax_a, quant_desc_bound(da), amax_b, n_amax_b,
                      quant_desc_bound(db), bias);
}

static int check_descs(qb_ctx *ctx, const char *op, const quant_desc *a, const quant_desc *b) {
    if (!qb_int8_gemm_supported(a) || !qb_int8_gemm_supported(b))
        return qb_errorf(&ctx->err, "%s: int8 codes need signed quantization of at most 8 bits (got %d and %d bits%s)", op,
                         a ? a->num_bits : 0, b ? b->num_bits : 0, (a && a->is_unsigned) || (b && b->is_unsigned) ? ", unsigned" : "");
    return 0;
}

qb_tensor *qb_linear_int8(qb_ctx *ctx, qb_tensor *x, const float *x_amax, const quant_desc *x_desc, qb_tensor *w, const float *w_amax,
                          int64_t n_w_amax, const quant_desc *w_desc, qb_tensor *bias) {
    static const char op[] = "linear_int8";
    QB_OP_BEGIN(ctx, x, w);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, op, x, w, bias);
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return qb_errorf(&ctx->err, "%s: input %s does not match weight %s (want [..., in] and [out, in])", op, QB_SHAPES(x, w)), NULL;
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return qb_errorf(&ctx->err, "%s: bias %s does not match weight %s", op, QB_SHAPES(bias, w)), NULL;
    if (n_w_amax != 1 && n_w_amax != w->shape[0])
        return qb_errorf(&ctx->err, "%s: %lld weight amax values for %lld rows", op, (long long)n_w_amax, (long long)w->shape[0]), NULL;
    if (check_descs(ctx, op, x_desc, w_desc)) return NULL;
    x = qb_contiguous(ctx, x);
    w = qb_contiguous(ctx, w);
    if (!x || !w) return NULL;
    const int64_t in = w->shape[1], out = w->shape[0], kp = pad4(in), np = pad4(out);
    int64_t rows = 1, shape[QB_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) rows *= shape[d] = x->shape[d];
    shape[x->ndim - 1] = out;
    const float *ax = upload_amax(ctx, op, x_amax, 1), *aw = ax ? upload_amax(ctx, op, w_amax, n_w_amax) : NULL;
    qb_tensor *y = aw ? qb_new(ctx, x->ndim, shape) : NULL;
    if (!y) return NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    const int64_t xs[4] = {1, 1, rows, in}, xst[4] = {0, 0, in, 1}, ws[4] = {1, 1, out, in};
    const int8_t *qx = codes(ctx, &ex, op, x->data, xs, xst, false, rows, kp, ax, 1, x_desc);
    const int8_t *qw = qx ? codes(ctx, &ex, op, w->data, ws, xst, false, np, kp, aw, n_w_amax, w_desc) : NULL;
    if (!qw || product(ctx, &ex, op, y, qx, qw, 1, rows, out, np, kp, ax, x_desc, aw, n_w_amax, w_desc, bias ? bias->data : NULL))
        return NULL;
    qb_tensor *inputs[3] = {x, w, bias};
    qb_record(ctx, op, qb_linear_backward, y, inputs, 3);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* The batch dims of t (up to two leading dims, right-aligned) as counts and element strides. */
static void batch_of(const qb_tensor *t, int64_t count[2], int64_t stride[2]) {
    int nb = t->ndim - 2;
    count[0] = count[1] = 1;
    stride[0] = stride[1] = 0;
    for (int d = 0; d < nb; d++) {
        count[2 - nb + d] = t->shape[d];
        stride[2 - nb + d] = t->stride[d];
    }
}

qb_tensor *qb_matmul_int8(qb_ctx *ctx, qb_tensor *a, float a_amax, const quant_desc *a_desc, qb_tensor *b, float b_amax,
                          const quant_desc *b_desc, bool trans_b) {
    static const char op[] = "matmul_int8";
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, op, a, b);
    if (a->ndim < 2 || a->ndim > 4 || b->ndim < 2)
        return qb_errorf(&ctx->err, "%s: need 2 to 4 dims, got %s @ %s", op, QB_SHAPES(a, b)), NULL;
    const int nd = a->ndim;
    const bool shared = b->ndim == 2;
    if (!shared) {
        bool ok = b->ndim == nd;
        for (int d = 0; ok && d < nd - 2; d++) ok = a->shape[d] == b->shape[d];
        if (!ok) return qb_errorf(&ctx->err, "%s: batch dims differ: %s @ %s", op, QB_SHAPES(a, b)), NULL;
    }
    const int64_t m = a->shape[nd - 2], k = a->shape[nd - 1];
    const int64_t kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2], n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (k != kb) return qb_errorf(&ctx->err, "%s: inner dims differ: %s @ %s%s", op, QB_SHAPES(a, b), trans_b ? "^T" : ""), NULL;
    if (check_descs(ctx, op, a_desc, b_desc)) return NULL;
    if (a->stride[nd - 1] != 1) a = qb_contiguous(ctx, a);
    if (b->stride[b->ndim - 1] != 1) b = qb_contiguous(ctx, b);
    if (!a || !b) return NULL;
    int64_t count[2], sa[2], sb[2] = {0, 0}, count_b[2];
    batch_of(a, count, sa);
    if (!shared) batch_of(b, count_b, sb);
    const int64_t batch = count[0] * count[1], kp = pad4(k), np = pad4(n);
    int64_t shape[QB_MAX_DIMS];
    for (int d = 0; d < nd - 2; d++) shape[d] = a->shape[d];
    shape[nd - 2] = m;
    shape[nd - 1] = n;
    const float *aa = upload_amax(ctx, op, &a_amax, 1), *ab = aa ? upload_amax(ctx, op, &b_amax, 1) : NULL;
    qb_tensor *c = ab ? qb_new(ctx, nd, shape) : NULL;
    if (!c) return NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    const int64_t bd = b->ndim;
    const int64_t as4[4] = {count[0], count[1], m, k}, ast[4] = {sa[0], sa[1], a->stride[nd - 2], 1};
    const int64_t bs4[4] = {count[0], count[1], b->shape[bd - 2], b->shape[bd - 1]}, bst[4] = {sb[0], sb[1], b->stride[bd - 2], 1};
    const int8_t *qa = codes(ctx, &ex, op, a->data, as4, ast, false, m, kp, aa, 1, a_desc);
    const int8_t *qb_codes = qa ? codes(ctx, &ex, op, b->data, bs4, bst, !trans_b, np, kp, ab, 1, b_desc) : NULL;
    if (!qb_codes || product(ctx, &ex, op, c, qa, qb_codes, batch, m, n, np, kp, aa, a_desc, ab, 1, b_desc, NULL)) return NULL;
    qb_tensor *in[2] = {a, b};
    qb_node *node = qb_record(ctx, op, qb_matmul_backward, c, in, 2);
    if (node) { /* matmul's saved integers */
        node->i[0] = false;
        node->i[1] = trans_b;
        node->i[2] = batch;
        node->i[3] = shared;
    }
    return qb_ctx_failed(ctx) ? NULL : c;
}

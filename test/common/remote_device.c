/* remote_device.c: see remote_device.h. */
#include "remote_device.h"

#include "autograd/cpu/kernels.h"
#include "quant/cpu/kernels.h"

#define REMOTE_OFFSET ((uintptr_t)1 << 63)

/* Host address of a device address (NULL stays NULL). */
#define H(p) ((void *)((p) ? (uintptr_t)(p) - REMOTE_OFFSET : 0))

static void *r_alloc(qb_dev *d, size_t bytes) {
    void *p = qb_cpu_alloc(d, bytes);
    return p ? (void *)((uintptr_t)p + REMOTE_OFFSET) : NULL;
}
static void r_release(qb_dev *d, void *p) { qb_cpu_release(d, H(p)); }
static int r_fill(qb_dev *d, float *dst, int64_t n, float v) { return qb_cpu_fill(d, H(dst), n, v); }
static int r_h2d(qb_dev *d, void *dst, const void *src, size_t bytes) { return qb_cpu_memcpy(d, H(dst), src, bytes); }
static int r_d2h(qb_dev *d, void *dst, const void *src, size_t bytes) { return qb_cpu_memcpy(d, dst, H(src), bytes); }
static int r_d2d(qb_dev *d, void *dst, const void *src, size_t bytes) { return qb_cpu_memcpy(d, H(dst), H(src), bytes); }
static int r_copy_strided(qb_dev *d, float *dst, const float *src, int nd, const int64_t *sh, const int64_t *st) {
    return qb_cpu_copy_strided(d, H(dst), H(src), nd, sh, st);
}
static int r_accumulate_strided(qb_dev *d, float *dst, const int64_t *st, const float *src, int nd, const int64_t *sh) {
    return qb_cpu_accumulate_strided(d, H(dst), st, H(src), nd, sh);
}
static int r_axpy(qb_dev *d, float *dst, const float *src, float a, int64_t n) { return qb_cpu_axpy(d, H(dst), H(src), a, n); }
static int r_scale(qb_dev *d, float *y, const float *x, float s, int64_t n) { return qb_cpu_scale(d, H(y), H(x), s, n); }
static int r_gemm(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, const void *b,
                  int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt) {
    return qb_cpu_gemm(d, ta, tb, m, n, k, alpha, H(a), lda, H(b), ldb, beta, H(c), ldc, bt);
}
static int r_cast_bf16(qb_dev *d, uint16_t *y, const float *x, int64_t n) { return qb_cpu_cast_bf16(d, H(y), H(x), n); }
static int r_bias_rows(qb_dev *d, float *y, const float *b, int64_t r, int64_t n) { return qb_cpu_bias_rows(d, H(y), H(b), r, n); }
static int r_col_sum(qb_dev *d, float *db, const float *dy, int64_t r, int64_t n) { return qb_cpu_col_sum(d, H(db), H(dy), r, n); }
static int r_binary(qb_dev *d, qb_binary_kind kind, float *y, const float *a, const float *b, int64_t n, int64_t nb, bool rows, int nd,
                    const int64_t *sh, const int64_t *bst) {
    return qb_cpu_binary(d, kind, H(y), H(a), H(b), n, nb, rows, nd, sh, bst);
}
static int r_binary_grad_b(qb_dev *d, qb_binary_kind kind, float *db, const float *dy, const float *a, int64_t n, int64_t nb, bool rows,
                           int nd, const int64_t *sh, const int64_t *bst) {
    return qb_cpu_binary_grad_b(d, kind, H(db), H(dy), H(a), n, nb, rows, nd, sh, bst);
}
static int r_mul_grad_a(qb_dev *d, float *da, float keep, const float *dy, const float *b, int64_t n, int nd, const int64_t *sh,
                        const int64_t *bst) {
    return qb_cpu_mul_grad_a(d, H(da), keep, H(dy), H(b), n, nd, sh, bst);
}
static int r_unary(qb_dev *d, qb_unary_kind k, float *y, const float *x, int64_t n) { return qb_cpu_unary(d, k, H(y), H(x), n); }
static int r_unary_grad(qb_dev *d, qb_unary_kind k, float keep, float *dx, const float *dy, const float *x, const float *y, int64_t n) {
    return qb_cpu_unary_grad(d, k, keep, H(dx), H(dy), H(x), H(y), n);
}
static int r_layernorm(qb_dev *d, float *y, float *mean, float *rstd, const float *x, const float *g, const float *b, int64_t rows,
                       int64_t h, float eps) {
    return qb_cpu_layernorm(d, H(y), H(mean), H(rstd), H(x), H(g), H(b), rows, h, eps);
}
static int r_layernorm_grad_params(qb_dev *d, float *dg, float *db, const float *dy, const float *x, const float *mean, const float *rstd,
                                   int64_t rows, int64_t h) {
    return qb_cpu_layernorm_grad_params(d, H(dg), H(db), H(dy), H(x), H(mean), H(rstd), rows, h);
}
static int r_layernorm_grad_input(qb_dev *d, float *dx, float keep, const float *dy, const float *x, const float *g, const float *mean,
                                  const float *rstd, int64_t rows, int64_t h) {
    return qb_cpu_layernorm_grad_input(d, H(dx), keep, H(dy), H(x), H(g), H(mean), H(rstd), rows, h);
}
static int r_softmax(qb_dev *d, float *y, const float *x, float scale, const float *mask, const int64_t *sh, const int64_t *mst) {
    return qb_cpu_softmax(d, H(y), H(x), scale, H(mask), sh, mst);
}
static int r_softmax_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dy, float scale, int64_t rows, int64_t c) {
    return qb_cpu_softmax_grad(d, H(dx), keep, H(y), H(dy), scale, rows, c);
}
static int r_dropout(qb_dev *d, float *y, const float *x, int64_t n, uint32_t key, uint64_t off, float p, float ik) {
    return qb_cpu_dropout(d, H(y), H(x), n, key, off, p, ik);
}
static int r_dropout_grad(qb_dev *d, float *dx, float keep, const float *dy, int64_t n, uint32_t key, uint64_t off, float p, float ik) {
    return qb_cpu_dropout_grad(d, H(dx), keep, H(dy), n, key, off, p, ik);
}
static int r_embedding(qb_dev *d, float *y, const float *w, const int32_t *ids, int64_t n, int64_t h) {
    return qb_cpu_embedding(d, H(y), H(w), H(ids), n, h);
}
static int r_embedding_grad(qb_dev *d, float *dw, const float *dy, const int32_t *ids, int64_t n, int64_t h, int64_t pad) {
    return qb_cpu_embedding_grad(d, H(dw), H(dy), H(ids), n, h, pad);
}
static int r_sum(qb_dev *d, float *y, const float *x, int64_t n, bool mean) { return qb_cpu_sum(d, H(y), H(x), n, mean); }
static int r_sum_grad(qb_dev *d, float *dx, const float *dy, float s, int64_t n) { return qb_cpu_sum_grad(d, H(dx), H(dy), s, n); }
static int r_cross_entropy(qb_dev *d, float *loss, float *lse, const float *x, const int32_t *lab, int64_t rows, int64_t c, int32_t ig,
                           int64_t count) {
    return qb_cpu_cross_entropy(d, H(loss), H(lse), H(x), H(lab), rows, c, ig, count);
}
static int r_cross_entropy_grad(qb_dev *d, float *dx, const float *x, const float *lse, const int32_t *lab, const float *dl, int64_t rows,
                                int64_t c, int32_t ig, int64_t count) {
    return qb_cpu_cross_entropy_grad(d, H(dx), H(x), H(lse), H(lab), H(dl), rows, c, ig, count);
}
static int r_mse(qb_dev *d, float *loss, const float *a, const float *b, int64_t n) { return qb_cpu_mse(d, H(loss), H(a), H(b), n); }
static int r_mse_grad(qb_dev *d, float *dt, const float *a, const float *b, const float *dl, bool neg, int64_t n) {
    return qb_cpu_mse_grad(d, H(dt), H(a), H(b), H(dl), neg, n);
}
static int r_bce(qb_dev *d, float *loss, const float *x, const float *t, int64_t n) { return qb_cpu_bce(d, H(loss), H(x), H(t), n); }
static int r_bce_grad(qb_dev *d, float *dx, const float *x, const float *t, const float *dl, int64_t n) {
    return qb_cpu_bce_grad(d, H(dx), H(x), H(t), H(dl), n);
}
static int r_adamw(qb_dev *d, float *w, float *m, float *v, const float *g, int64_t numel, const qb_segment *seg, int n_seg,
                   const qb_adamw_hyper *h) {
    return qb_cpu_adamw(d, H(w), H(m), H(v), H(g), numel, H(seg), n_seg, h);
}
static int r_grad_norm(qb_dev *d, float *norm, double *ss, const float *g, int64_t numel, const qb_segment *seg, int n_seg) {
    return qb_cpu_grad_norm(d, H(norm), H(ss), H(g), numel, H(seg), n_seg);
}
static int r_grad_clip(qb_dev *d, float *g, int64_t numel, const qb_segment *seg, int n_seg, const float *norm, double max_norm) {
    return qb_cpu_grad_clip(d, H(g), numel, H(seg), n_seg, H(norm), max_norm);
}

static const qb_kernels remote_kernels = {
    .name = "remote", .error_message = qb_cpu_error_message, .alloc = r_alloc, .release = r_release, .fill = r_fill,
    .memcpy_h2d = r_h2d, .memcpy_d2h = r_d2h, .memcpy_d2d = r_d2d, .copy_strided = r_copy_strided,
    .accumulate_strided = r_accumulate_strided, .axpy = r_axpy, .scale = r_scale, .gemm = r_gemm, .cast_bf16 = r_cast_bf16, .bias_rows = r_bias_rows,
    .col_sum = r_col_sum, .binary = r_binary, .binary_grad_b = r_binary_grad_b, .mul_grad_a = r_mul_grad_a, .unary = r_unary,
    .unary_grad = r_unary_grad, .layernorm = r_layernorm, .layernorm_grad_params = r_layernorm_grad_params,
    .layernorm_grad_input = r_layernorm_grad_input, .softmax = r_softmax, .softmax_grad = r_softmax_grad, .dropout = r_dropout,
    .dropout_grad = r_dropout_grad, .embedding = r_embedding, .embedding_grad = r_embedding_grad, .sum = r_sum, .sum_grad = r_sum_grad,
    .cross_entropy = r_cross_entropy, .cross_entropy_grad = r_cross_entropy_grad, .mse = r_mse, .mse_grad = r_mse_grad, .bce = r_bce,
    .bce_grad = r_bce_grad, .adamw = r_adamw, .grad_norm = r_grad_norm, .grad_clip = r_grad_clip,
};

static int r_fake_quant(qb_dev *d, float *y, const float *x, int64_t o, int64_t c, int64_t i, const float *amax, float lo, float hi) {
    return qb_cpu_fake_quant(d, H(y), H(x), o, c, i, H(amax), lo, hi);
}
static int r_fake_quant_grad(qb_dev *d, float *dx, float keep, const float *dy, const float *x, int64_t o, int64_t c, int64_t i,
                             const float *amax) {
    return qb_cpu_fake_quant_grad(d, H(dx), keep, H(dy), H(x), o, c, i, H(amax));
}
static int r_fake_quant_block(qb_dev *d, float *dst, const float *src, const float *amax, const qb_fq_segment *seg, int n, int64_t max_numel,
                              uint8_t *clipped, int64_t n_clipped) {
    return qb_cpu_fake_quant_block(d, H(dst), H(src), H(amax), H(seg), n, max_numel, H(clipped), n_clipped);
}
static int r_fake_quant_mask_rows(qb_dev *d, float *g, const float *x, int64_t o, int64_t c, int64_t i, const float *amax, const uint8_t *clipped) {
    return qb_cpu_fake_quant_mask_rows(d, H(g), H(x), o, c, i, H(amax), H(clipped));
}
static int r_fq_learnable(qb_dev *d, float *y, const float *x, int64_t n, const float *amax, float lo, float hi) {
    return qb_cpu_fake_quant_learnable(d, H(y), H(x), n, H(amax), lo, hi);
}
static int r_fq_learnable_grad(qb_dev *d, float *dx, float *da, const float *dy, const float *x, int64_t n, const float *amax) {
    return qb_cpu_fake_quant_learnable_grad(d, H(dx), H(da), H(dy), H(x), n, H(amax));
}
static int r_amax_reduce(qb_dev *d, float *amax, int32_t *bad, const float *x, int64_t o, int64_t c, int64_t i) {
    return qb_cpu_amax_reduce(d, H(amax), H(bad), H(x), o, c, i);
}
static int r_any_negative(qb_dev *d, int32_t *flag, const float *x, int64_t n) { return qb_cpu_any_negative(d, H(flag), H(x), n); }
static int r_abs_stats(qb_dev *d, qb_abs_stats *out, const float *x, int64_t n, bool skip) {
    return qb_cpu_abs_stats(d, H(out), H(x), n, skip);
}
static int r_histogram(qb_dev *d, int64_t *counts, const float *x, int64_t n, const qb_hist_bins *bins) {
    qb_hist_bins b = *bins;
    b.edges_f32 = H(b.edges_f32);
    b.edges = H(b.edges);
    return qb_cpu_histogram(d, H(counts), H(x), n, &b);
}

/* a fused op's fake-quant point with its amax translated (NULL stays NULL) */
static qb_fq_point r_point(const qb_fq_point *p) {
    qb_fq_point q = p ? *p : (qb_fq_point){0};
    q.amax = H(q.amax);
    return q;
}
static int r_softmax_fq(qb_dev *d, float *y, float *z, const float *x, float scale, const float *mask, const int64_t *sh,
                        const int64_t *mst, const qb_fused_dropout *drop, const qb_fq_point *fq) {
    qb_fq_point p = r_point(fq);
    return qb_cpu_softmax_fq(d, H(y), H(z), H(x), scale, H(mask), sh, mst, drop, &p);
}
static int r_softmax_fq_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dz, float scale, int64_t rows, int64_t c,
                             const qb_fused_dropout *drop, const float *amax) {
    return qb_cpu_softmax_fq_grad(d, H(dx), keep, H(y), H(dz), scale, rows, c, drop, H(amax));
}
static int r_act_fq(qb_dev *d, qb_unary_kind k, float *z, const float *x, int64_t n, const qb_fq_point *fq) {
    qb_fq_point p = r_point(fq);
    return qb_cpu_act_fq(d, k, H(z), H(x), n, &p);
}
static int r_act_fq_grad(qb_dev *d, qb_unary_kind k, float keep, float *dx, const float *dz, const float *x, int64_t n, const float *amax) {
    return qb_cpu_act_fq_grad(d, k, keep, H(dx), H(dz), H(x), n, H(amax));
}
static int r_add_fq_layernorm(qb_dev *d, float *y, float *yq, float *s, float *mean, float *rstd, const float *a, const float *r,
                              const float *g, const float *b, int64_t rows, int64_t h, float eps, const qb_fq_point *fa,
                              const qb_fq_point *fr, const qb_fq_point *fy) {
    qb_fq_point pa = r_point(fa), pr = r_point(fr), py = r_point(fy);
    return qb_cpu_add_fq_layernorm(d, H(y), H(yq), H(s), H(mean), H(rstd), H(a), H(r), H(g), H(b), rows, h, eps, &pa, &pr, &py);
}
static int r_add_fq_layernorm_grad(qb_dev *d, float *da, float ka, float *dr, float kr, const float *dy, const float *s, const float *a,
                                   const float *r, const float *g, const float *mean, const float *rstd, int64_t rows, int64_t h,
                                   const float *amax_a, const float *amax_r) {
    return qb_cpu_add_fq_layernorm_grad(d, H(da), ka, H(dr), kr, H(dy), H(s), H(a), H(r), H(g), H(mean), H(rstd), rows, h, H(amax_a),
                                        H(amax_r));
}

static const qb_quant_kernels remote_quant_kernels = {
    .name = "remote", .fake_quant = r_fake_quant, .fake_quant_grad = r_fake_quant_grad, .fake_quant_block = r_fake_quant_block,
    .fake_quant_mask_rows = r_fake_quant_mask_rows, .fake_quant_learnable = r_fq_learnable,
    .fake_quant_learnable_grad = r_fq_learnable_grad, .amax_reduce = r_amax_reduce, .any_negative = r_any_negative,
    .abs_stats = r_abs_stats, .histogram = r_histogram, .softmax_fq = r_softmax_fq, .softmax_fq_grad = r_softmax_fq_grad,
    .act_fq = r_act_fq, .act_fq_grad = r_act_fq_grad, .add_fq_layernorm = r_add_fq_layernorm,
    .add_fq_layernorm_grad = r_add_fq_layernorm_grad,
};

qb_ctx *remote_ctx_new(uint64_t seed, qb_err *err) {
    qb_ctx *ctx = qb_ctx_new_on(&remote_kernels, NULL, QB_CPU, seed, err);
    if (ctx) ctx->quant_kernels = &remote_quant_kernels;
    return ctx;
}

/* gemm_bf16.c: the CPU's BF16 GEMM (precision bf16) through oneDNN's matmul primitive: fp32 A and B rounded to bf16
 * (round to nearest even, NaN kept), bf16 ones (cast_bf16, the same rounding) taken as they are, products accumulated in
 * fp32 (AMX or AVX512-BF16), C read and written in fp32.
 * Built only with oneDNN (QB_HAVE_DNNL). */
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "base/blas_core.h"

#ifdef QB_HAVE_DNNL
#include "autograd/cpu/dnnl_matmul.h"
#endif

const char *qb_cpu_bf16_unavailable(void) {
#ifndef QB_HAVE_DNNL
    return "this build has no oneDNN (install libdnnl-dev and rebuild: scripts/setup.sh)";
#else
    const qb_cpu_features *f = &qb_blas_core_get()->cpu;
    if (!f->avx512_bf16 && !f->amx) return "this CPU has neither AVX512-BF16 nor AMX-BF16 (CPUID)";
    return NULL;
#endif
}

int qb_cpu_set_precision(qb_dev *d, qb_precision p) {
    (void)d;
    if (p == QB_PREC_FP32) return 0;
    return p == QB_PREC_BF16 && !qb_cpu_bf16_unavailable() ? 0 : -1;
}

/* x rounded to bf16, nearest even; NaN stays NaN (quiet). */
static inline uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);  /* branch-free: the loop vectorizes */
}

int qb_cpu_cast_bf16(qb_dev *d, uint16_t *y, const float *x, int64_t n) {
    (void)d;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = bf16_round(x[i]);
    return 0;
}

#ifndef QB_HAVE_DNNL
int qb_cpu_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, const void *b,
                     int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt) {
    return -1;
}
#else

/* One operand's matrices, rows x cols each (leading dim ld), rounded into dense bf16 [n_mat, rows, cols]: matrix i of
 * the batch is at off[0] * (i / count1) + off[1] * (i % count1) (dims with offset 0 keep one matrix). */
static uint16_t *round_operand(const float *x, int64_t rows, int64_t cols, int64_t ld, const int64_t count[2],
                               const int64_t off[2]) {
    int64_t c0 = off[0] ? count[0] : 1, c1 = off[1] ? count[1] : 1;
    uint16_t *y = malloc((size_t)(c0 * c1 * rows * cols) * sizeof *y + 64);
    if (!y) return NULL;
    int64_t total_rows = c0 * c1 * rows;
#pragma omp parallel for schedule(static) if (total_rows * cols > 65536)
    for (int64_t r = 0; r < total_rows; r++) {
        int64_t mat = r / rows, i = mat / c1, j = mat % c1;
        const float *src = x + i * off[0] + j * off[1] + (r % rows) * ld;
        uint16_t *dst = y + r * cols;
        for (int64_t q = 0; q < cols; q++) dst[q] = bf16_round(src[q]);
    }
    return y;
}

/* An operand as oneDNN takes it: the 4-d descriptor [d0, d1, rows, cols] of logical shape rows x cols (stored cols x
 * rows when trans) and its bf16 data: x itself when is_bf16 (leading dim ld, batch offsets off), else x rounded into a
 * dense copy (*owned, freed by the caller). d0/d1 are 1 along a batch dim with offset 0 (oneDNN broadcasts it). */
static int operand(dnnl_memory_desc_t *md, const void **data, uint16_t **owned, const void *x, bool is_bf16, int64_t rows, int64_t cols,
                   int64_t ld, bool trans, const int64_t count[2], const int64_t off[2]) {
    int64_t d0 = off[0] ? count[0] : 1, d1 = off[1] ? count[1] : 1, stored_rows = trans ? cols : rows, stored_cols = trans ? rows : cols;
    int64_t s0 = off[0], s1 = off[1];
    *owned = NULL;
    if (is_bf16) {
        *data = x;
    } else {
        if (!(*owned = round_operand(x, stored_rows, stored_cols, ld, count, off))) return -1;
        *data = *owned;
        ld = stored_cols;
        s1 = stored_rows * stored_cols;
        s0 = d1 * s1;
    }
    if (d1 == 1) s1 = stored_rows * ld;
    if (d0 == 1) s0 = d1 * s1;
    dnnl_dims_t dims = {d0, d1, rows, cols};
    dnnl_dims_t strides = {s0, s1, trans ? 1 : ld, trans ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_bf16, strides) == dnnl_success ? 0 : -1;
}

#define DNNL_TRY(call)                        \
    do {                                      \
        if ((call) != dnnl_success) goto out; \
    } while (0)

/* C[count0, count1] (offsets c_off, leading dim ldc) = alpha * op(A) op(B) + beta * C with fp32 operands rounded. */
static int batched(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, bool a_bf16,
                   const void *b, int64_t ldb, bool b_bf16, float beta, float *c, int64_t ldc, const int64_t count[2],
                   const int64_t a_off[2], const int64_t b_off[2], const int64_t c_off[2]) {
    int rc = -1;
    uint16_t *ab = NULL, *bb = NULL;
    const void *ad, *bd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_memory_desc_t a_md, b_md, c_md;
    if (operand(&a_md, &ad, &ab, a, a_bf16, m, k, lda, ta, count, a_off) ||
        operand(&b_md, &bd, &bb, b, b_bf16, k, n, ldb, tb, count, b_off))
        goto out;
    dnnl_dims_t c_dims = {count[0], count[1], m, n}, c_strides = {c_off[0], c_off[1], ldc, 1};
    if (count[0] == 1) c_strides[0] = count[1] * m * ldc;
    if (count[1] == 1) c_strides[1] = m * ldc;
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&c_md, 4, c_dims, dnnl_f32, c_strides));
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    if (alpha != 1.0f) DNNL_TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
    if (beta != 0.0f) {
        DNNL_TRY(dnnl_post_ops_create(&post));
        DNNL_TRY(dnnl_post_ops_append_sum(post, beta));
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, post));
    }
    if (qb_cpu_dnnl_matmul(&a_md, ad, &b_md, bd, &c_md, c, attr)) goto out;
    rc = 0;
out:
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
    free(ab);
    free(bb);
    return rc;
}

/* Element `off` of an operand of fp32 or bf16 values. */
static const void *element(const void *x, bool is_bf16, int64_t off) {
    return is_bf16 ? (const void *)((const uint16_t *)x + off) : (const void *)((const float *)x + off);
}

int qb_cpu_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, const void *b,
                     int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt) {
    bool shared_c = bt->c[0] == 0 && bt->c[1] == 0;
    if (!shared_c)
        return batched(ta, tb, m, n, k, alpha, a, lda, bt->a_bf16, b, ldb, bt->b_bf16, beta, c, ldc, bt->count, bt->a, bt->b, bt->c);
    static const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    int64_t batch = bt->count[0] * bt->count[1];
    for (int64_t p = 0; p < batch; p++) {  /* every product adds into one C, in order */
        int64_t i = p / bt->count[1], j = p % bt->count[1];
        if (batched(ta, tb, m, n, k, alpha, element(a, bt->a_bf16, i * bt->a[0] + j * bt->a[1]), lda, bt->a_bf16,
                    element(b, bt->b_bf16, i * bt->b[0] + j * bt->b[1]), ldb, bt->b_bf16, p == 0 ? beta : 1.0f, c, ldc, one, zero, zero,
                    zero))
            return -1;
    }
    return 0;
}
#endif

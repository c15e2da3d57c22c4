/* int8_gemm.c: the INT8 GEMM path on host memory: integer codes of a fake-quantized tensor, the int8 x int8 -> int32
 * product (oneDNN's s8 matmul where the build has it, else an OpenMP loop the compiler vectorises; OpenBLAS has no
 * integer GEMM; QB_INT8_GEMM_LOOP=1 forces the loop, for its test) and the dequantization with bias. */
#include <math.h>
#include <stdlib.h>
#include "quant/cpu/kernels.h"
#include "quant/quant_math.h"

#ifdef QB_HAVE_DNNL
#include "autograd/cpu/dnnl_matmul.h"
#endif

#define PAR_MIN 32768

/* The code of one element (a NaN gives 0: the fp32 path's NaN shows in its backward, which reads the fp32 tensors). */
static inline int8_t code_of(float x, float s, float qmin, float qmax) {
    const float v = fake_quant_one(x, s, 1.0f, qmin, qmax);
    return v == v ? (int8_t)v : 0;
}

int qb_cpu_quantize_s8(qb_dev *d, int8_t *q, const float *x, const int64_t shape[4], const int64_t stride[4], bool transpose,
                       int64_t rows_out, int64_t ld, const float *amax, int64_t n_amax, float qmin, float qmax) {
    (void)d;
    const int64_t batch = shape[0] * shape[1], rows = shape[2], cols = shape[3];
    const int64_t total_rows = batch * rows_out;
#pragma omp parallel for schedule(static) if (total_rows * ld > PAR_MIN)
    for (int64_t t = 0; t < total_rows; t++) {
        const int64_t p = t / rows_out, o = t % rows_out;
        const float *xm = x + (p / shape[1]) * stride[0] + (p % shape[1]) * stride[1];
        int8_t *dst = q + t * ld;
        for (int64_t i = 0; i < ld; i++) {
            const int64_t r = transpose ? i : o, c = transpose ? o : i;  /* input element (r, c) */
            if (r >= rows || c >= cols) {
                dst[i] = 0;
                continue;
            }
            const float s = fake_quant_scale_of(amax[n_amax == 1 ? 0 : r], qmax);
            dst[i] = code_of(xm[r * stride[2] + c * stride[3]], s, qmin, qmax);
        }
    }
    return 0;
}

/* c = a b^T for one product: a [m, k], b [n, k], c [m, n]. */
static void gemm_s8_loop(int32_t *c, const int8_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k) {
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 20))
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const int8_t *ar = a + i * k, *br = b + j * k;
            int32_t acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t l = 0; l < k; l++) acc += (int32_t)ar[l] * (int32_t)br[l];
            c[i * n + j] = acc;
        }
}

#ifdef QB_HAVE_DNNL
#define DNNL_TRY(call)                        \
    do {                                      \
        if ((call) != dnnl_success) goto out; \
    } while (0)

/* The batch through one 3-d oneDNN matmul [batch, m, k] x [batch, k, n] (b read transposed) -> s32. */
static int gemm_s8_dnnl(int32_t *c, const int8_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k, int64_t batch) {
    int rc = -1;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t a_dims = {batch, m, k}, a_str = {m * k, k, 1};
    dnnl_dims_t b_dims = {batch, k, n}, b_str = {n * k, 1, k};
    dnnl_dims_t c_dims = {batch, m, n}, c_str = {m * n, n, 1};
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&a_md, 3, a_dims, dnnl_s8, a_str));
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&b_md, 3, b_dims, dnnl_s8, b_str));
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&c_md, 3, c_dims, dnnl_s32, c_str));
    rc = qb_cpu_dnnl_matmul(&a_md, a, &b_md, b, &c_md, c, NULL);
out:
    return rc;
}
#endif

int qb_cpu_gemm_s8(qb_dev *d, int32_t *c, const int8_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k, int64_t batch) {
    (void)d;
    if (m <= 0 || n <= 0 || batch <= 0) return 0;
#ifdef QB_HAVE_DNNL
    if (k > 0 && !getenv("QB_INT8_GEMM_LOOP") && gemm_s8_dnnl(c, a, b, m, n, k, batch) == 0) return 0;
#endif
    for (int64_t p = 0; p < batch; p++) gemm_s8_loop(c + p * m * n, a + p * m * k, b + p * n * k, m, n, k);
    return 0;
}

int qb_cpu_dequant_s32(qb_dev *d, float *y, const int32_t *acc, int64_t batch, int64_t m, int64_t n, int64_t ld, const float *amax_a,
                       float qmax_a, const float *amax_b, int64_t n_amax_b, float qmax_b, const float *bias) {
    (void)d;
    const double sa = fake_quant_scale_of(amax_a[0], qmax_a);
    const int64_t rows = batch * m;
#pragma omp parallel for schedule(static) if (rows * n > PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {  /* ascending j: in place (ld = n) reads each element before it is written */
            const double s = sa * (double)fake_quant_scale_of(amax_b[n_amax_b == 1 ? 0 : j], qmax_b);
            const double v = s == 0.0 ? 0.0 : (double)acc[r * ld + j] / s;
            y[r * n + j] = (float)(v + (bias ? (double)bias[j] : 0.0));
        }
    return 0;
}

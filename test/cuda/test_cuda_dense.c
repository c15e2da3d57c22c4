/* test_cuda_dense.c: the dense CUDA kernels where the op table's small cases do not reach, against the CPU kernels:
 * - GEMM shapes: BERT-like sizes, 2-dim batches of strided matrices (dense, head views, a shared operand), shared
 *   outputs (stacked along k, and not), k = 0, m or n = 0, empty batches, misaligned pointers and odd leading dims;
 *   fp32 within 1e-5 (relative to the largest value, and per element);
 * - TF32 and BF16 GEMMs: |cuda - cpu fp32| <= 2u sum_l |a_il| |b_lj| per element (u = 2^-11 for TF32, 2^-8 for bf16:
 *   each input rounded once) plus the fp32 tolerance, a result that differs from fp32, and (emulator) the fp32 product of
 *   the rounded inputs within 1e-5; the precision setting on the CPU (tf32 refused);
 * - bf16 operands: cast_bf16 against the CPU's bits (ties, subnormals, inf, NaN); every GEMM case with A and B cast to bf16
 *   (CUDA_R_16BF layouts, CUBLAS_COMPUTE_32F) against the fp32-operand bf16 GEMM (1e-5; the emulator: the same bits);
 *   the linear and probs @ V under bf16 with a marked input whose fp32 memory is handed back and reused (qb_release_f32)
 *   against the unmarked op (output and gradients; 1e-5);
 * - larger op cases (multi-chunk column sums, multi-block sums, broadcast gradients, head views) forward and backward;
 * - AdamW with clipping over a packed parameter list on the CUDA context against the CPU context for several steps
 *   (parameters, moments and the norm; the norm within 1e-6 relative).
 * Runs on a real GPU or under the CUDA emulator; exits 77 where neither is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "cuda_compare.h"
#include "op_eval.h"
#include "train/clip_grad.h"
#include "train/optim_adamw.h"

/* ---- GEMM */

typedef struct gemm_case {
    const char *name;
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    qb_gemm_batch bt;
    float alpha, beta;
    int64_t a_shift;  /* floats before A's first element (a misaligned pointer) */
    bool nan_c;       /* C starts as NaN (beta 0: never read) */
} gemm_case;

#define ONE {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}

static const gemm_case gemm_cases[] = {
    {"linear forward 256x768x768 (nt, beta 1)", false, true, 256, 768, 768, 768, 768, 768, ONE, 1.0f, 1.0f, 0, false},
    {"linear dW 768x768x256 (tn, beta 1)", true, false, 768, 768, 256, 768, 768, 768, ONE, 1.0f, 1.0f, 0, false},
    {"ffn forward 128x3072x768 (nt)", false, true, 128, 3072, 768, 768, 768, 3072, ONE, 1.0f, 0.0f, 0, true},
    {"ffn dx 128x768x3072 (nn)", false, false, 128, 768, 3072, 3072, 768, 768, ONE, 1.0f, 0.0f, 0, true},
    {"attention scores [2, 12] 128x128x64 dense (nt, one strided batch)", false, true, 128, 128, 64, 64, 64, 128,
     {{2, 12}, {12 * 128 * 64, 128 * 64}, {12 * 128 * 64, 128 * 64}, {12 * 128 * 128, 128 * 128}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 0.125f, 0.0f, 0, true},
    {"attention scores [2, 12] on head views (nt, one call per batch index)", false, true, 128, 128, 64, 768, 768, 128,
     {{2, 12}, {128 * 768, 64}, {128 * 768, 64}, {12 * 128 * 128, 128 * 128}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, true},
    {"attention context [2, 12] probabilities @ head views (nn)", false, false, 128, 64, 128, 128, 768, 64,
     {{2, 12}, {12 * 128 * 128, 128 * 128}, {128 * 768, 64}, {12 * 128 * 64, 128 * 64}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, true},
    {"head-view gradient [2, 12] dV = P^T dC (tn, beta 1)", true, false, 128, 64, 128, 128, 64, 768,
     {{2, 12}, {12 * 128 * 128, 128 * 128}, {12 * 128 * 64, 128 * 64}, {128 * 768, 64}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 1.0f, 0, false},
    {"shared output stacked along k: sum_p A_p^T B_p (tn, [3, 4], beta 1)", true, false, 64, 96, 32, 64, 96, 96,
     {{3, 4}, {4 * 32 * 64, 32 * 64}, {4 * 32 * 96, 32 * 96}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 1.0f, 0, false},
    {"shared output not stacked (tn, [3, 4], alpha 0.75, beta 0.5: in product order)", true, false, 64, 96, 32, 64, 96, 96,
     {{3, 4}, {4 * (32 * 64 + 16), 32 * 64 + 16}, {4 * 32 * 96, 32 * 96}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 0.75f, 0.5f, 0, false},
    {"shared output side by side along k (nt, [1, 5])", false, true, 16, 24, 8, 40, 40, 24,
     {{1, 5}, {0, 8}, {0, 8}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, true},
    {"shared output, one product a batch dim (nn, [4, 1], beta 1)", false, false, 12, 10, 9, 9, 10, 10,
     {{4, 1}, {12 * 9, 0}, {9 * 10 + 3, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 1.0f, 0, false},
    {"shared B, stacked A and C (nn, [2, 3]: one taller product)", false, false, 20, 16, 24, 24, 16, 16,
     {{2, 3}, {3 * 20 * 24, 20 * 24}, {0, 0}, {3 * 20 * 16, 20 * 16}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, true},
    {"shared A (stride 0) over a strided batch (tn, [2, 3])", true, false, 20, 16, 24, 20, 16, 16,
     {{2, 3}, {0, 0}, {3 * 24 * 16, 24 * 16}, {3 * 20 * 16, 20 * 16}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, true},
    {"misaligned A, odd leading dims (nn)", false, false, 19, 23, 33, 37, 29, 31, ONE, 1.0f, 0.0f, 1, true},
    {"misaligned A, odd leading dims (tt, beta -1)", true, true, 19, 23, 33, 37, 35, 31, ONE, 2.0f, -1.0f, 3, false},
    {"k = 0, beta 0 (C = 0, NaN never read)", false, false, 5, 7, 0, 1, 7, 7, ONE, 1.0f, 0.0f, 0, true},
    {"k = 0, beta 0.5 over a batch [2, 3]", false, true, 5, 7, 0, 1, 1, 9,
     {{2, 3}, {0, 0}, {0, 0}, {3 * 5 * 9, 5 * 9}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.5f, 0, false},
    {"k = 0, shared output, beta 2", false, false, 5, 7, 0, 1, 7, 7, {{2, 3}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 2.0f, 0, false},
    {"m = 0 (C untouched)", false, false, 0, 7, 4, 4, 7, 7, ONE, 1.0f, 0.0f, 0, false},
    {"n = 0 (C untouched)", false, false, 5, 0, 4, 4, 1, 1, ONE, 1.0f, 0.0f, 0, false},
    {"empty batch [0, 4] (C untouched)", false, false, 5, 7, 4, 4, 7, 7, {{0, 4}, {20, 20}, {28, 28}, {35, 35}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f, 0, false},
    {"empty batch [0, 4], shared output, beta 0.25", false, false, 5, 7, 4, 4, 7, 7, {{0, 4}, {20, 20}, {28, 28}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.25f, 0,
     false},
    {"empty batch [3, 0], shared output, beta 0 (C = 0)", false, false, 5, 7, 4, 4, 7, 7, {{3, 0}, {20, 20}, {28, 28}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f,
     0, true},
};
static const int n_gemm_cases = (int)(sizeof gemm_cases / sizeof gemm_cases[0]);

/* Floats an operand spans over the batch (rows x cols matrices, leading dim ld), at least 1. */
static int64_t span(const int64_t off[2], const int64_t count[2], int64_t rows, int64_t cols, int64_t ld) {
    if (count[0] <= 0 || count[1] <= 0 || rows <= 0 || cols <= 0) return 1;
    return (count[0] - 1) * off[0] + (count[1] - 1) * off[1] + (rows - 1) * ld + cols;
}

typedef struct gemm_data {
    int64_t na, nb, nc;
    float *a, *b, *c0;  /* inputs, C before the product */
} gemm_data;

static gemm_data gemm_data_make(const gemm_case *g, uint64_t seed) {
    static const int64_t one[2] = {1, 1};
    gemm_data d;
    bool shared = g->bt.c[0] == 0 && g->bt.c[1] == 0;
    d.na = g->a_shift + span(g->bt.a, g->bt.count, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda);
    d.nb = span(g->bt.b, g->bt.count, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb);
    d.nc = span(g->bt.c, shared ? one : g->bt.count, g->m, g->n, g->ldc);
    d.a = randn(d.na, seed);
    d.b = randn(d.nb, seed + 1);
    d.c0 = randn(d.nc, seed + 2);
    if (g->nan_c)
        for (int64_t i = 0; i < d.nc; i++) d.c0[i] = NAN;
    return d;
}

static void gemm_data_free(gemm_data *d) {
    free(d->a);
    free(d->b);
    free(d->c0);
}

/* C on the CPU (the reference) from the given inputs; abs: |A| |B| |alpha| instead (the rounding bound), beta 0. */
static float *cpu_gemm(const gemm_case *g, const gemm_data *d, const float *a, const float *b, bool abs_bound) {
    float *c = malloc((size_t)d->nc * sizeof(float));
    float *aa = NULL, *bb = NULL;
    memcpy(c, d->c0, (size_t)d->nc * sizeof(float));
    if (abs_bound) {
        aa = malloc((size_t)d->na * sizeof(float));
        bb = malloc((size_t)d->nb * sizeof(float));
        for (int64_t i = 0; i < d->na; i++) aa[i] = fabsf(a[i]);
        for (int64_t i = 0; i < d->nb; i++) bb[i] = fabsf(b[i]);
        for (int64_t i = 0; i < d->nc; i++) c[i] = 0.0f;
        a = aa;
        b = bb;
    }
    qb_cpu_kernels.gemm(NULL, g->ta, g->tb, g->m, g->n, g->k, abs_bound ? fabsf(g->alpha) : g->alpha, a + g->a_shift, g->lda, b, g->ldb,
                        abs_bound ? 0.0f : g->beta, c, g->ldc, &g->bt);
    free(aa);
    free(bb);
    return c;
}

/* C on the CUDA context (NULL when the kernel failed). */
static float *cuda_gemm(qb_check *chk, qb_ctx *gpu, const gemm_case *g, const gemm_data *d) {
    qb_ctx_step_reset(gpu);
    float *da = dev_copy(gpu, d->a, d->na), *db = dev_copy(gpu, d->b, d->nb), *dc = dev_copy(gpu, d->c0, d->nc);
    float *c = malloc((size_t)d->nc * sizeof(float));
    int rc = !da || !db || !dc ||
             QB_KERNEL(gpu, "gemm test", gemm, g->ta, g->tb, g->m, g->n, g->k, g->alpha, da + g->a_shift, g->lda, db, g->ldb, g->beta, dc,
                       g->ldc, &g->bt) ||
             qb_download(gpu, c, dc, (size_t)d->nc * sizeof(float));
    if (!CHECK(chk, rc == 0, "%s: cuda gemm runs: %s", g->name, gpu->err.msg)) {
        free(c);
        return NULL;
    }
    return c;
}

static void test_gemm_fp32(qb_check *chk, qb_ctx *gpu) {
    for (int i = 0; i < n_gemm_cases; i++) {
        const gemm_case *g = &gemm_cases[i];
        gemm_data d = gemm_data_make(g, 100 + 10 * (uint64_t)i);
        float *want = cpu_gemm(g, &d, d.a, d.b, false), *got = cuda_gemm(chk, gpu, g, &d);
        int64_t bad = 0;
        for (int64_t e = 0; e < d.nc; e++) bad += isnan(want[e]) != isnan(got ? got[e] : 0.0f);
        if (got && CHECK(chk, bad == 0, "%s: %lld NaN positions differ from the cpu", g->name, (long long)bad)) {
            for (int64_t e = 0; e < d.nc; e++)
                if (isnan(want[e])) want[e] = got[e] = 0.0f;  /* never written by either (gaps of a NaN-filled C) */
            char what[160];
            snprintf(what, sizeof what, "gemm %s: cuda vs cpu", g->name);
            compare(chk, what, got, want, d.nc);
        }
        free(want);
        free(got);
        gemm_data_free(&d);
    }
}

/* x rounded to TF32 (10 mantissa bits) or bf16 (7), to nearest even */
static float round_mantissa(float x, int drop_bits) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) {
        uint32_t half = (1u << (drop_bits - 1)) - 1u;
        u += half + ((u >> drop_bits) & 1u);
        u &= ~((1u << drop_bits) - 1u);
    }
    memcpy(&x, &u, 4);
    return x;
}

static void test_gemm_precision(qb_check *chk, qb_ctx *gpu) {
    static const int picks[] = {0, 4, 5, 8, 10, 14};
    static const struct {
        qb_precision p;
        double u;
        int drop_bits;
    } precs[] = {{QB_PREC_TF32, 0x1p-11, 13}, {QB_PREC_BF16, 0x1p-8, 16}};
    for (int pi = 0; pi < 2; pi++) {
        if (!CHECK(chk, qb_ctx_set_precision(gpu, precs[pi].p) == 0 && gpu->precision == precs[pi].p, "set precision %s: %s",
                   qb_precision_name(precs[pi].p), gpu->err.msg))
            continue;
        for (size_t j = 0; j < sizeof picks / sizeof picks[0]; j++) {
            const gemm_case *g = &gemm_cases[picks[j]];
            const char *pn = qb_precision_name(precs[pi].p);
            gemm_data d = gemm_data_make(g, 500 + 10 * (uint64_t)j);
            float *want = cpu_gemm(g, &d, d.a, d.b, false), *bound = cpu_gemm(g, &d, d.a, d.b, true), *got = cuda_gemm(chk, gpu, g, &d);
            if (got) {
                double tol32 = 1e-5 * max_abs(want, d.nc), worst = 0.0, diff_max = 0.0;
                int64_t bad = 0;
                for (int64_t e = 0; e < d.nc; e++) {
                    if (isnan(want[e])) continue;
                    double diff = fabs((double)got[e] - want[e]), tol = 2.0 * precs[pi].u * bound[e] + tol32 + 1e-5 * fabs(want[e]);
                    bad += !(diff <= tol);
                    diff_max = fmax(diff_max, diff);
                    if (bound[e] > 0) worst = fmax(worst, diff / bound[e]);
                }
                CHECK(chk, bad == 0, "gemm %s in %s: %lld elements beyond 2u sum|a||b| of fp32", g->name, pn, (long long)bad);
                CHECK(chk, diff_max > 0.0, "gemm %s in %s: differs from fp32 (max |diff| %.3g)", g->name, pn, diff_max);
                printf("gemm %s in %s: max |diff| vs fp32 %.3g, max |diff| / sum|a||b| %.3g (bound %.3g)\n", g->name, pn, diff_max, worst,
                       2.0 * precs[pi].u);
#ifdef QB_CUDA_EMU
                /* the emulator rounds the inputs to nearest even, as this reference does */
                float *ra = malloc((size_t)d.na * sizeof(float)), *rb = malloc((size_t)d.nb * sizeof(float));
                for (int64_t e = 0; e < d.na; e++) ra[e] = round_mantissa(d.a[e], precs[pi].drop_bits);
                for (int64_t e = 0; e < d.nb; e++) rb[e] = round_mantissa(d.b[e], precs[pi].drop_bits);
                float *rounded = cpu_gemm(g, &d, ra, rb, false);
                for (int64_t e = 0; e < d.nc; e++)
                    if (isnan(rounded[e])) rounded[e] = got[e] = 0.0f;
                char what[200];
                snprintf(what, sizeof what, "gemm %s in %s: cuda vs the cpu product of rounded inputs", g->name, pn);
                compare(chk, what, got, rounded, d.nc);
                free(rounded);
                free(ra);
                free(rb);
#else
                (void)round_mantissa;
#endif
            }
            free(want);
            free(bound);
            free(got);
            gemm_data_free(&d);
        }
    }
    CHECK(chk, qb_ctx_set_precision(gpu, QB_PREC_FP32) == 0 && gpu->precision == QB_PREC_FP32, "back to fp32: %s", gpu->err.msg);
}

/* The setting on the CPU: fp32 accepted, tf32 refused with a clear error (bf16: test_cpu_bf16); names. */
static void test_precision_api(qb_check *chk, qb_ctx *cpu) {
    CHECK(chk, qb_ctx_set_precision(cpu, QB_PREC_FP32) == 0, "cpu: fp32 precision accepted");
    int rc = qb_ctx_set_precision(cpu, QB_PREC_TF32);
    CHECK(chk, rc == -1 && strstr(cpu->err.msg, "precision tf32: the cpu device computes GEMMs in fp32 or bf16 only") &&
                   cpu->precision == QB_PREC_FP32,
          "cpu: tf32 refused: %s", cpu->err.msg);
    qb_ctx_step_reset(cpu);
    qb_precision p = QB_PREC_FP32;
    CHECK(chk, qb_precision_parse("bf16", &p) == 0 && p == QB_PREC_BF16 && qb_precision_parse("fp16", &p) == -1 &&
                   strcmp(qb_precision_name(QB_PREC_TF32), "tf32") == 0,
          "precision names");
}

/* ---- larger op cases: the op table's engine ops at sizes with several chunks, blocks and head views */

static qb_tensor *f_linear(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_linear(c, in[0], in[1], in[2]); }
static qb_tensor *f_scores(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;  /* q k^T on head views of [B, S, H] */
    return qb_scale(c, qb_matmul(c, qb_split_heads(c, in[0], 4), qb_split_heads(c, in[1], 4), false, true), 0.125f);
}
static qb_tensor *f_context(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;  /* merge_heads(p @ v heads) */
    return qb_merge_heads(c, qb_matmul(c, in[0], qb_split_heads(c, in[1], 4), false, false));
}
static qb_tensor *f_shared_b(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_matmul(c, in[0], in[1], true, false); }
static qb_tensor *f_bias_add(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_bias_add(c, in[0], in[1]); }
static qb_tensor *f_mul(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_mul(c, in[0], in[1]); }
static qb_tensor *f_sub(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_sub(c, in[0], in[1]); }
static qb_tensor *f_gelu(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_gelu(c, in[0]); }
static qb_tensor *f_gelu_tanh(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_gelu_tanh(c, in[0]); }
static qb_tensor *f_tanh(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_tanh(c, in[0]); }
static qb_tensor *f_sum(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_sum(c, in[0]); }
static qb_tensor *f_mean(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_mean(c, in[0]); }
static qb_tensor *f_slice(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_slice(c, in[0], 1, 37, 200); }

#define S2(a, b) {a, b}
#define S3(a, b, c) {a, b, c}
#define S4(a, b, c, d) {a, b, c, d}

static const op_case big_cases[] = {
    {"linear [3, 400, 96] -> 160 (bias gradient over 5 row chunks)", 3, {3, 2, 1}, {S3(3, 400, 96), S2(160, 96), {160}}, {1, 1, 1}, f_linear, 0, 0},
    {"attention scores on head views [2, 4, 64, 32]", 2, {3, 3}, {S3(2, 64, 128), S3(2, 64, 128)}, {1, 1}, f_scores, 0, 0},
    {"attention context [2, 4, 64, 64] @ heads of [2, 64, 128]", 2, {4, 3}, {S4(2, 4, 64, 64), S3(2, 64, 128)}, {1, 1}, f_context, 0, 0},
    {"matmul a^T b, b shared [2, 3, 48, 40]^T @ [48, 56]", 2, {4, 2}, {S4(2, 3, 48, 40), S2(48, 56)}, {1, 1}, f_shared_b, 0, 0},
    {"bias_add [1200, 72] (column sums over 5 chunks)", 2, {2, 1}, {S2(1200, 72), {72}}, {1, 1}, f_bias_add, 0, 0},
    {"mul broadcast [8, 50, 64] * [50, 1]", 2, {3, 2}, {S3(8, 50, 64), S2(50, 1)}, {1, 1}, f_mul, 0, 0},
    {"sub broadcast [6, 40, 30] - [6, 1, 30]", 2, {3, 3}, {S3(6, 40, 30), S3(6, 1, 30)}, {1, 1}, f_sub, 0, 0},
    {"gelu [300, 512]", 1, {2}, {S2(300, 512)}, {1}, f_gelu, 0, 0},
    {"gelu_tanh [300, 512]", 1, {2}, {S2(300, 512)}, {1}, f_gelu_tanh, 0, 0},
    {"tanh [300, 512]", 1, {2}, {S2(300, 512)}, {1}, f_tanh, 0, 0},
    {"sum [100, 1000] (49 blocks)", 1, {2}, {S2(100, 1000)}, {1}, f_sum, 0, 0},
    {"mean [2, 600, 1000] (586 blocks)", 1, {3}, {S3(2, 600, 1000)}, {1}, f_mean, 0, 0},
    {"slice [64, 300, 8] dim 1 [37, 237)", 1, {3}, {S3(64, 300, 8)}, {1}, f_slice, 0, 0},
};
static const int n_big_cases = (int)(sizeof big_cases / sizeof big_cases[0]);

static void test_big_ops(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    for (int ci = 0; ci < n_big_cases; ci++) {
        const op_case *c = &big_cases[ci];
        op_case_aux aux = {0};
        float *in[OP_CASE_MAX_IN] = {NULL};
        for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
        op_case_fill_inputs(c, in, 900 + (uint64_t)ci);
        op_eval_result a, b;
        int ra = op_eval(cpu, c, in, &aux, NULL, &a);
        float *up = ra ? NULL : randn(a.out_n, 950 + (uint64_t)ci);
        op_eval_result_free(&a);
        ra = ra || op_eval(cpu, c, in, &aux, up, &a);
        int rb = op_eval(gpu, c, in, &aux, up, &b);
        if (CHECK(chk, ra == 0 && rb == 0, "%s: cpu (%s) and cuda (%s) run", c->name, cpu->err.msg, gpu->err.msg)) {
            char what[200];
            snprintf(what, sizeof what, "%s output: cuda vs cpu", c->name);
            if (CHECK(chk, a.out_n == b.out_n, "%s: output sizes", c->name)) compare(chk, what, b.out, a.out, a.out_n);
            for (int i = 0; i < c->n_in; i++) {
                snprintf(what, sizeof what, "%s grad of input %d: cuda vs cpu", c->name, i);
                compare(chk, what, b.grads[i], a.grads[i], op_case_numel(c, i));
            }
        }
        op_eval_result_free(&a);
        op_eval_result_free(&b);
        free(up);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
    }
}

/* The linear op in TF32 / BF16: forward and gradients within 4u of the largest sum |a||b| of fp32 on the CPU. */
static void test_linear_precision(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    const op_case *c = &big_cases[0];
    op_case_aux aux = {0};
    float *in[OP_CASE_MAX_IN] = {NULL};
    for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
    op_case_fill_inputs(c, in, 990);
    float *up = randn(3 * 400 * 160, 991);
    op_eval_result a, b;
    int ra = op_eval(cpu, c, in, &aux, up, &a);
    static const qb_precision precs[] = {QB_PREC_TF32, QB_PREC_BF16};
    for (int pi = 0; pi < 2; pi++) {
        double u = precs[pi] == QB_PREC_TF32 ? 0x1p-11 : 0x1p-8;
        /* sum_l |a||b| per output is at most k max|a| max|b|: k = 96 (y), 160 (dx), 1200 (dW) for N(0, 1) values */
        int rb = qb_ctx_set_precision(gpu, precs[pi]) || op_eval(gpu, c, in, &aux, up, &b);
        if (CHECK(chk, ra == 0 && rb == 0, "linear in %s runs: %s", qb_precision_name(precs[pi]), gpu->err.msg)) {
            const float *got[3] = {b.out, b.grads[0], b.grads[1]}, *want[3] = {a.out, a.grads[0], a.grads[1]};
            int64_t n[3] = {a.out_n, op_case_numel(c, 0), op_case_numel(c, 1)};
            double scale[3] = {96.0 * max_abs(in[0], n[1]) * max_abs(in[1], n[2]), 160.0 * max_abs(up, a.out_n) * max_abs(in[1], n[2]),
                               1200.0 * max_abs(up, a.out_n) * max_abs(in[0], n[1])};
            const char *names[3] = {"output", "dx", "dW"};
            for (int t = 0; t < 3; t++) {
                char what[96];
                snprintf(what, sizeof what, "linear %s in %s vs fp32 (atol 4u k max|a| max|b| = %.3g)", names[t], qb_precision_name(precs[pi]),
                         4.0 * u * scale[t]);
                qb_check_close(chk, what, got[t], want[t], n[t], 4.0 * u * scale[t], 0.0);
            }
            compare(chk, "linear dbias (no GEMM) in reduced precision", b.grads[2], a.grads[2], 160);
            op_eval_result_free(&b);
        }
    }
    qb_ctx_set_precision(gpu, QB_PREC_FP32);
    op_eval_result_free(&a);
    free(up);
    for (int i = 0; i < c->n_in; i++) free(in[i]);
}

/* ---- bf16 operands */

static void test_bf16_operands(qb_check *chk, qb_ctx *gpu) {
    enum { N = 5000 };
    float *x = randn(N, 1234);
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x00000001u, 0x807fffffu, 0x7f7fffffu,
                                0x7f800000u, 0xff800000u, 0x80000000u, 0x7fc00001u, 0xff800001u, 0x3f80ffffu};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) memcpy(&x[i], &special[i], 4);
    uint16_t want[N], got[N];
    qb_ctx_step_reset(gpu);
    float *dx = dev_copy(gpu, x, N);
    uint16_t *dy = qb_act_alloc(gpu, N * sizeof(uint16_t));
    int rc = qb_cpu_kernels.cast_bf16(NULL, want, x, N) || !dx || !dy || QB_KERNEL(gpu, "cast test", cast_bf16, dy, dx, N) ||
             qb_download(gpu, got, dy, sizeof got);
    CHECK(chk, rc == 0 && memcmp(got, want, sizeof got) == 0, "cast_bf16 on cuda: the cpu's bits: %s", gpu->err.msg);
    free(x);
    if (!CHECK(chk, qb_ctx_set_precision(gpu, QB_PREC_BF16) == 0, "precision bf16: %s", gpu->err.msg)) return;
    int identical = 0, n_run = 0;
    for (int i = 0; i < n_gemm_cases; i++) {
        const gemm_case *g = &gemm_cases[i];
        gemm_data d = gemm_data_make(g, 300 + 10 * (uint64_t)i);
        qb_gemm_batch bt = g->bt;
        bt.precision = QB_PREC_BF16;
        float *ref = cuda_gemm(chk, gpu, &(gemm_case){.name = g->name, .ta = g->ta, .tb = g->tb, .m = g->m, .n = g->n, .k = g->k, .lda = g->lda,
                                                     .ldb = g->ldb, .ldc = g->ldc, .bt = bt, .alpha = g->alpha, .beta = g->beta, .a_shift = g->a_shift,
                                                     .nan_c = g->nan_c}, &d);
        qb_ctx_step_reset(gpu);
        float *da = dev_copy(gpu, d.a, d.na), *db = dev_copy(gpu, d.b, d.nb), *dc = dev_copy(gpu, d.c0, d.nc);
        uint16_t *a16 = qb_act_alloc(gpu, (size_t)d.na * 2), *b16 = qb_act_alloc(gpu, (size_t)d.nb * 2);
        float *c = malloc((size_t)d.nc * sizeof(float));
        bt.a_bf16 = bt.b_bf16 = true;
        rc = !da || !db || !dc || !a16 || !b16 || QB_KERNEL(gpu, "cast test", cast_bf16, a16, da, d.na) ||
             QB_KERNEL(gpu, "cast test", cast_bf16, b16, db, d.nb) ||
             QB_KERNEL(gpu, "gemm test", gemm, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a16 + g->a_shift, g->lda, b16, g->ldb, g->beta, dc,
                       g->ldc, &bt) ||
             qb_download(gpu, c, dc, (size_t)d.nc * sizeof(float));
        if (CHECK(chk, rc == 0 && ref, "%s: bf16-operand gemm runs: %s", g->name, gpu->err.msg)) {
            for (int64_t e = 0; e < d.nc; e++)
                if (isnan(ref[e]) && isnan(c[e])) ref[e] = c[e] = 0.0f;
            identical += memcmp(c, ref, (size_t)d.nc * sizeof(float)) == 0;
            n_run++;
            char what[160];
            snprintf(what, sizeof what, "gemm %s: bf16 operands vs fp32 operands under bf16", g->name);
            compare(chk, what, c, ref, d.nc);
        }
        free(c);
        free(ref);
        gemm_data_free(&d);
    }
    printf("bf16-operand gemm: %d of %d cases bit for bit the fp32-operand bf16 gemm\n", identical, n_run);
    /* the linear: marked input (bf16 copy kept, fp32 handed back and overwritten) vs unmarked */
    enum { R = 96, IN = 160, OUT = 64 };
    float *xh = randn(R * IN, 401), *wh = randn(OUT * IN, 402), *up = randn(R * OUT, 403), *res[2][3];
    qb_tensor *w = qb_param_new(gpu, "bf16test.w", 2, (int64_t[]){OUT, IN});
    if (!w || qb_copy_from_host(gpu, w, wh)) abort();
    for (int marked = 0; marked < 2; marked++) {
        qb_ctx_step_reset(gpu);
        qb_zero_grad(gpu);
        qb_tensor *xt = qb_from_host(gpu, 2, (int64_t[]){R, IN}, xh);
        xt->requires_grad = true;
        if (marked) qb_mark_gemm_input(xt);
        qb_tensor *y = qb_linear(gpu, xt, w, NULL);
        if (marked) {
            CHECK(chk, y && y->node && y->node->saved[0] == xt->bf16 && xt->bf16, "cuda linear keeps the marked input's bf16 copy");
            qb_release_f32(gpu, xt);
            qb_tensor *junk = qb_new(gpu, 2, (int64_t[]){R, IN});
            if (junk) qb_fill(gpu, junk, -777.0f);
        }
        for (int t = 0; t < 3; t++) res[marked][t] = calloc(R * IN + OUT * IN, sizeof(float));
        rc = qb_backward_with_grad(gpu, y, up) || qb_to_host(gpu, y, res[marked][0]) || qb_to_host(gpu, xt->grad, res[marked][1]) ||
             qb_to_host(gpu, w->grad, res[marked][2]);
        CHECK(chk, rc == 0, "cuda linear in bf16 (marked %d): %s", marked, gpu->err.msg);
    }
    compare(chk, "cuda linear bf16 output: marked input vs unmarked", res[1][0], res[0][0], R * OUT);
    compare(chk, "cuda linear bf16 dx: marked input vs unmarked", res[1][1], res[0][1], R * IN);
    compare(chk, "cuda linear bf16 dW from the saved bf16 input vs unmarked", res[1][2], res[0][2], OUT * IN);
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) free(res[m][t]);
    free(xh), free(wh), free(up);
    /* probs @ V: a marked contiguous [2, 3, S, S] left operand, V a head view of a [2, S, 3 * 16] tensor */
    enum { SB = 2, SN = 3, SS = 40, SD = 16 };
    float *ph = randn(SB * SN * SS * SS, 404), *vh = randn(SB * SS * SN * SD, 405), *uc = randn(SB * SN * SS * SD, 406), *mr[2][3];
    for (int marked = 0; marked < 2; marked++) {
        qb_ctx_step_reset(gpu);
        qb_tensor *p = qb_from_host(gpu, 4, (int64_t[]){SB, SN, SS, SS}, ph), *v = qb_from_host(gpu, 3, (int64_t[]){SB, SS, SN * SD}, vh);
        p->requires_grad = v->requires_grad = true;
        if (marked) qb_mark_gemm_input(p);
        qb_tensor *c = qb_matmul(gpu, p, qb_split_heads(gpu, v, SN), false, false);
        if (marked) {
            CHECK(chk, c && c->node && c->node->saved[0] == p->bf16 && p->bf16, "cuda matmul keeps the marked operand's bf16 copy");
            qb_release_f32(gpu, p);
            qb_tensor *junk = qb_new(gpu, 4, (int64_t[]){SB, SN, SS, SS});
            if (junk) qb_fill(gpu, junk, 555.0f);
        }
        for (int t = 0; t < 3; t++) mr[marked][t] = calloc(SB * SN * SS * SS, sizeof(float));
        rc = qb_backward_with_grad(gpu, c, uc) || qb_to_host(gpu, c, mr[marked][0]) || qb_to_host(gpu, p->grad, mr[marked][1]) ||
             qb_to_host(gpu, v->grad, mr[marked][2]);
        CHECK(chk, rc == 0, "cuda matmul in bf16 (marked %d): %s", marked, gpu->err.msg);
    }
    compare(chk, "cuda matmul bf16 output: marked operand vs unmarked", mr[1][0], mr[0][0], SB * SN * SS * SD);
    compare(chk, "cuda matmul bf16 dA: marked operand vs unmarked", mr[1][1], mr[0][1], SB * SN * SS * SS);
    compare(chk, "cuda matmul bf16 dV from the saved bf16 operand vs unmarked", mr[1][2], mr[0][2], SB * SS * SN * SD);
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) free(mr[m][t]);
    free(ph), free(vh), free(uc);
    qb_ctx_set_precision(gpu, QB_PREC_FP32);
}

/* ---- AdamW and clipping over packed parameters, the CUDA context against the CPU context */

static const struct {
    const char *name;
    int64_t n;
    bool frozen;
} opt_params[] = {
    {"encoder.layer.0.attention.self.query.weight", 300000, false},  /* many chunks */
    {"encoder.layer.0.attention.self.query.bias", 768, false},       /* no decay */
    {"embeddings.LayerNorm.weight", 8193, false},                     /* crosses chunk edges, no decay */
    {"frozen.weight", 5000, true},                                    /* no gradient: untouched, not counted */
    {"tiny.weight", 1, false},
    {"odd.weight", 8191, false},
};
#define N_SMALL 300 /* and as many small parameters of 40 floats: hundreds of segments in one chunk */

static int make_params(qb_ctx *ctx, qb_tensor **p, int *n) {
    int k = 0;
    for (size_t i = 0; i < sizeof opt_params / sizeof opt_params[0]; i++) {
        p[k] = qb_param_new(ctx, opt_params[i].name, 1, (int64_t[]){opt_params[i].n});
        if (!p[k]) return -1;
        p[k]->requires_grad = !opt_params[i].frozen;
        k++;
    }
    for (int i = 0; i < N_SMALL; i++) {
        char name[48];
        snprintf(name, sizeof name, "small.%d.%s", i, i % 3 ? "weight" : "bias");
        if (!(p[k++] = qb_param_new(ctx, name, 2, (int64_t[]){5, 8}))) return -1;
    }
    *n = k;
    for (int i = 0; i < k; i++) {
        float *v = randn(qb_numel(p[i]), 4000 + (uint64_t)i);
        int rc = qb_copy_from_host(ctx, p[i], v);
        free(v);
        if (rc) return -1;
    }
    return qb_params_pack(ctx);
}

/* Same gradients on both: step s, parameter i (frozen ones get gradients too, which must stay unused). */
static int set_grads(qb_ctx *ctx, qb_tensor **p, int n, int step) {
    for (int i = 0; i < n; i++) {
        float *g = randn(qb_numel(p[i]), 10000 + 1000 * (uint64_t)step + (uint64_t)i);
        float s = step == 2 ? 1e-3f : 1.0f;  /* step 2: small gradients, no clipping */
        for (int64_t e = 0; e < qb_numel(p[i]); e++) g[e] *= s;
        int rc = qb_copy_from_host(ctx, p[i]->grad, g);
        free(g);
        if (rc) return -1;
    }
    return 0;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_adamw(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    enum { MAXP = 8 + N_SMALL };
    qb_tensor *pc[MAXP], *pg[MAXP];
    int nc = 0, ng = 0;
    qb_err err = {0};
    qb_adamw oc, og;
    if (!CHECK(chk, make_params(cpu, pc, &nc) == 0 && make_params(gpu, pg, &ng) == 0 && nc == ng, "parameters: %s %s", cpu->err.msg,
               gpu->err.msg))
        return;
    if (!CHECK(chk, qb_adamw_init(&oc, cpu, 0.9, 0.999, 1e-8, 0.01, &err) == 0 && qb_adamw_init(&og, gpu, 0.9, 0.999, 1e-8, 0.01, &err) == 0,
               "adamw init: %s", err.msg))
        return;
    double worst_norm = 0.0;
    for (int step = 0; step < 5; step++) {
        if (!CHECK(chk, set_grads(cpu, pc, nc, step) == 0 && set_grads(gpu, pg, ng, step) == 0, "step %d: gradients", step)) break;
        double nc_norm, ng_norm;
        if (step == 3) {  /* the norm alone, then no clipping (max_norm above it) */
            nc_norm = qb_grad_norm(cpu);
            ng_norm = qb_grad_norm(gpu);
            qb_clip_grad_norm(cpu, 1e9);
            qb_clip_grad_norm(gpu, 1e9);
        } else {
            nc_norm = qb_clip_grad_norm(cpu, 1.0);
            ng_norm = qb_clip_grad_norm(gpu, 1.0);
        }
        double rel = fabs(ng_norm - nc_norm) / nc_norm;
        if (!(rel <= worst_norm)) worst_norm = rel;  /* NaN sticks */
        CHECK(chk, rel <= 1e-6, "step %d: gradient norm cuda %.9g vs cpu %.9g (rel %.3g)", step, ng_norm, nc_norm, rel);
        CHECK(chk, qb_adamw_step(&oc, cpu, 1e-3f) == 0 && qb_adamw_step(&og, gpu, 1e-3f) == 0, "step %d: adamw: %s %s", step, cpu->err.msg,
              gpu->err.msg);
    }
    /* the whole blocks: parameters, clipped gradients, both moments (padding included) */
    int64_t numel = cpu->params.block_numel;
    float *hc = malloc((size_t)numel * sizeof(float)), *hg = malloc((size_t)numel * sizeof(float));
    const char *names[4] = {"parameters", "clipped gradients", "first moments", "second moments"};
    const float *blocks_c[4] = {cpu->params.block_data, cpu->params.block_grad, oc.m, oc.v};
    const float *blocks_g[4] = {gpu->params.block_data, gpu->params.block_grad, og.m, og.v};
    CHECK(chk, gpu->params.block_numel == numel, "same block sizes");
    for (int t = 0; t < 4; t++) {
        if (!CHECK(chk, qb_download(gpu, hg, blocks_g[t], (size_t)numel * sizeof(float)) == 0, "download %s", names[t])) continue;
        memcpy(hc, blocks_c[t], (size_t)numel * sizeof(float));
        double md = max_diff(hg, hc, numel), mx = max_abs(hc, numel);
        printf("adamw after 5 steps, %s: max |cuda - cpu| %.3g (max |cpu| %.3g)\n", names[t], md, mx);
        CHECK(chk, md <= 1e-6 * mx, "%s after 5 steps: max |cuda - cpu| %.3g within 1e-6 of max %.3g", names[t], md, mx);
    }
    /* the frozen parameter is as created */
    float *v = randn(5000, 4000 + 3);
    CHECK(chk, qb_to_host(gpu, pg[3], hg) == 0 && max_diff(hg, v, 5000) == 0.0, "frozen parameter untouched on cuda");
    printf("gradient norm: max relative difference cuda vs cpu over 5 steps %.3g\n", worst_norm);
    free(v);
    free(hc);
    free(hg);
    qb_adamw_free(&oc);
    qb_adamw_free(&og);
}

int main(void) {
    qb_check chk = {0};
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda dense", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda dense");
    }
    qb_err err = {0};
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 5, &err), *gpu = cpu ? qb_ctx_new(QB_CUDA, 5, &err) : NULL;
    if (!gpu) qb_die("test_cuda_dense", &err);
    test_gemm_fp32(&chk, gpu);
    test_gemm_precision(&chk, gpu);
    test_precision_api(&chk, cpu);
    test_big_ops(&chk, cpu, gpu);
    test_linear_precision(&chk, cpu, gpu);
    test_bf16_operands(&chk, gpu);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    /* fresh contexts: the parameters are the only ones */
    cpu = qb_ctx_new(QB_CPU, 5, &err);
    gpu = cpu ? qb_ctx_new(QB_CUDA, 5, &err) : NULL;
    if (!gpu) qb_die("test_cuda_dense", &err);
    test_adamw(&chk, cpu, gpu);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "cuda dense");
}

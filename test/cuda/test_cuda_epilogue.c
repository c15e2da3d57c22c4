/* test_cuda_epilogue.c: the CUDA linear's GEMM epilogues (run.gemm_epilogue; cuBLASLt BIAS, GELU_AUX_BIAS, BGRADB)
 * against the CPU kernels that do the same work separately (bias rows as C, gemm, the tanh GELU, col_sum):
 * - the gemm_epilogue entry: bias, bias + tanh GELU (output and pre-activation), the bias gradient added into a
 *   non-zero one with beta 0 and 1, k = 0, and a width whose GELU aux cannot have an epilogue (ld not a multiple of 8:
 *   the fallback); within 1e-5 of the CPU; under the emulator the epilogue itself ran where cuBLASLt allows it;
 * - the linear and linear + tanh GELU ops, epilogues on and off: outputs and the gradients of x, W and the bias within
 *   1e-5 of the CPU; under the emulator the bias epilogue's output equals the unfused one bit for bit, and
 *   qb_linear_act records one linear_gelu_tanh node with epilogues on, linear + gelu_tanh with them off.
 * Runs on a real GPU or under the CUDA emulator; exits 77 where neither is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "cuda_compare.h"
#include "op_eval.h"

#ifdef QB_TEST_CUDA_EMU
static const bool emulated = true;
#else
static const bool emulated = false;
#endif

static float *host_of(qb_ctx *g, const float *dev, int64_t n) {
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!h || qb_download(g, h, dev, (size_t)n * sizeof(float))) abort();
    return h;
}

/* ---- the entry */

typedef struct epi_case {
    const char *name;
    qb_epilogue_kind kind;
    int64_t m, n, k;
    float beta;
    bool fused; /* the emulator runs it as cuBLASLt's epilogue */
} epi_case;

static const epi_case epi_cases[] = {
    {"bias: linear forward 300 x 96, k 80", QB_EPI_BIAS, 300, 96, 80, 0.0f, true},
    {"bias, k 0 (C = bias)", QB_EPI_BIAS, 7, 24, 0, 0.0f, false},
    {"bias + tanh GELU 200 x 64, k 48", QB_EPI_BIAS_GELU_TANH, 200, 64, 48, 0.0f, true},
    {"bias + tanh GELU 50 x 60 (aux ld 60: separate kernels)", QB_EPI_BIAS_GELU_TANH, 50, 60, 40, 0.0f, false},
    {"bias gradient in dW = dy^T x: 96 x 80, k 300, beta 0", QB_EPI_BGRAD, 96, 80, 300, 0.0f, true},
    {"bias gradient in dW += dy^T x: 40 x 56, k 1100, beta 1", QB_EPI_BGRAD, 40, 56, 1100, 1.0f, true},
};

static void test_entry(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    for (size_t ci = 0; ci < sizeof epi_cases / sizeof epi_cases[0]; ci++) {
        const epi_case *e = &epi_cases[ci];
        bool bgrad = e->kind == QB_EPI_BGRAD, gelu = e->kind == QB_EPI_BIAS_GELU_TANH;
        int64_t m = e->m, n = e->n, k = e->k, nbias = bgrad ? m : n;
        /* bias kinds: A [m, k], B [n, k] (nt); the bias gradient: A [k, m], B [k, n] (tn) */
        bool ta = bgrad, tb = !bgrad;
        int64_t lda = ta ? m : k, ldb = tb ? k : n;
        float *a = randn(m * k, 10 + ci), *b = randn(n * k, 20 + ci), *c0 = randn(m * n, 30 + ci), *bias = randn(nbias, 40 + ci);
        float *c_ref = malloc((size_t)(m * n) * sizeof(float)), *aux_ref = malloc((size_t)(m * n) * sizeof(float));
        float *bias_ref = malloc((size_t)nbias * sizeof(float));
        memcpy(c_ref, c0, (size_t)(m * n) * sizeof(float));
        memcpy(bias_ref, bias, (size_t)nbias * sizeof(float));
        qb_gemm_batch one = {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT};
        int rc;
        if (bgrad) {
            rc = QB_KERNEL(cpu, "ref", gemm, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, e->beta, c_ref, n, &one) ||
                 QB_KERNEL(cpu, "ref", col_sum, bias_ref, a, k, m);
        } else {
            float *pre = gelu ? aux_ref : c_ref;
            rc = QB_KERNEL(cpu, "ref", bias_rows, pre, bias, m, n) ||
                 QB_KERNEL(cpu, "ref", gemm, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, pre, n, &one) ||
                 (gelu && QB_KERNEL(cpu, "ref", unary, QB_UNARY_GELU_TANH, c_ref, aux_ref, m * n));
        }
        qb_ctx_step_reset(gpu);
        float *da = dev_copy(gpu, a, m * k), *db = dev_copy(gpu, b, n * k), *dc = dev_copy(gpu, c0, m * n), *dbias = dev_copy(gpu, bias, nbias);
        float *daux = qb_act_alloc(gpu, (size_t)(m * n) * sizeof(float));
        qb_gemm_epilogue ep = {.kind = e->kind, .bias = bgrad ? NULL : dbias, .aux = gelu ? daux : NULL, .bias_grad = bgrad ? dbias : NULL};
        int rg = !da || !db || !dc || !dbias || !daux ||
                 QB_KERNEL(gpu, "gemm_epilogue", gemm_epilogue, ta, tb, m, n, k, 1.0f, da, lda, db, ldb, e->beta, dc, n, &ep);
        if (CHECK(chk, rc == 0 && rg == 0, "%s: cpu (%s) and cuda (%s) run", e->name, cpu->err.msg, gpu->err.msg)) {
            char what[160];
            float *c = host_of(gpu, dc, m * n);
            snprintf(what, sizeof what, "%s: C", e->name);
            compare(chk, what, c, c_ref, m * n);
            free(c);
            if (gelu) {
                float *aux = host_of(gpu, daux, m * n);
                snprintf(what, sizeof what, "%s: pre-activation (aux)", e->name);
                compare(chk, what, aux, aux_ref, m * n);
                free(aux);
            }
            if (bgrad) {
                float *g = host_of(gpu, dbias, nbias);
                snprintf(what, sizeof what, "%s: bias gradient (added to the one given)", e->name);
                compare(chk, what, g, bias_ref, nbias);
                free(g);
            }
            if (emulated) CHECK(chk, ep.fused == e->fused, "%s: epilogue fused %d, want %d", e->name, ep.fused, e->fused);
            else printf("%s: %s\n", e->name, ep.fused ? "cuBLASLt epilogue" : "separate kernels (no cuBLASLt algorithm)");
        }
        free(a), free(b), free(c0), free(bias), free(c_ref), free(aux_ref), free(bias_ref);
    }
}

/* ---- the ops */

static qb_tensor *f_linear(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_linear(c, in[0], in[1], in[2]); }
static qb_tensor *f_linear_gelu(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_linear_act(c, in[0], in[1], in[2], QB_UNARY_GELU_TANH);
}

static const op_case op_list[] = {
    {"linear [3, 100, 72] -> 40", 3, {3, 2, 1}, {{3, 100, 72}, {40, 72}, {40}}, {1, 1, 1}, f_linear, 0, 0},
    {"linear [700, 48] -> 24 (bias gradient over 3 chunks unfused)", 3, {2, 2, 1}, {{700, 48}, {24, 48}, {24}}, {1, 1, 1}, f_linear, 0, 0},
    {"linear + tanh GELU [2, 90, 32] -> 64", 3, {3, 2, 1}, {{2, 90, 32}, {64, 32}, {64}}, {1, 1, 1}, f_linear_gelu, 0, 0},
    {"linear + tanh GELU [50, 16] -> 20 (aux ld 20: separate kernels)", 3, {2, 2, 1}, {{50, 16}, {20, 16}, {20}}, {1, 1, 1}, f_linear_gelu, 0, 0},
};

static int count_op(const qb_ctx *ctx, const char *op) {
    int n = 0;
    for (int i = 0; i < ctx->n_tape; i++) n += strcmp(ctx->tape[i]->op, op) == 0;
    return n;
}

static void test_ops(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    for (size_t ci = 0; ci < sizeof op_list / sizeof op_list[0]; ci++) {
        const op_case *c = &op_list[ci];
        float *in[OP_CASE_MAX_IN] = {NULL};
        for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
        op_case_fill_inputs(c, in, 500 + (uint64_t)ci);
        op_case_aux aux = {0};
        op_eval_result ref, on, off;
        int r0 = op_eval(cpu, c, in, &aux, NULL, &ref);
        float *up = r0 ? NULL : randn(ref.out_n, 600 + (uint64_t)ci);
        op_eval_result_free(&ref);
        r0 = r0 || op_eval(cpu, c, in, &aux, up, &ref);
        gpu->gemm_epilogue = true;
        int r1 = op_eval(gpu, c, in, &aux, up, &on);
        int fused_nodes = count_op(gpu, "linear_gelu_tanh");
        gpu->gemm_epilogue = false;
        int r2 = op_eval(gpu, c, in, &aux, up, &off);
        int unfused_nodes = count_op(gpu, "linear_gelu_tanh") + count_op(gpu, "gelu_tanh");
        gpu->gemm_epilogue = true;
        if (CHECK(chk, r0 == 0 && r1 == 0 && r2 == 0, "%s: cpu (%s) and cuda (%s) run", c->name, cpu->err.msg, gpu->err.msg)) {
            char what[200];
            for (int v = 0; v < 2; v++) {
                const op_eval_result *g = v ? &off : &on;
                const char *mode = v ? "epilogues off" : "epilogues on";
                snprintf(what, sizeof what, "%s, %s: output vs cpu", c->name, mode);
                compare(chk, what, g->out, ref.out, ref.out_n);
                for (int i = 0; i < c->n_in; i++) {
                    snprintf(what, sizeof what, "%s, %s: gradient of input %d vs cpu", c->name, mode, i);
                    compare(chk, what, g->grads[i], ref.grads[i], op_case_numel(c, i));
                }
            }
            if (c->forward == f_linear_gelu) {
                CHECK(chk, fused_nodes == 1, "%s: %d linear_gelu_tanh nodes with epilogues on", c->name, fused_nodes);
                CHECK(chk, unfused_nodes == 1 && count_op(gpu, "linear") == 1, "%s: linear + gelu_tanh with epilogues off", c->name);
            } else if (emulated) { /* acc + bias either way: the emulator's BIAS epilogue and beta 1 on bias rows agree */
                CHECK(chk, memcmp(on.out, off.out, (size_t)on.out_n * sizeof(float)) == 0, "%s: bias epilogue output differs from bias rows + "
                      "beta 1", c->name);
            }
        }
        op_eval_result_free(&ref), op_eval_result_free(&on), op_eval_result_free(&off);
        free(up);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
    }
}

int main(void) {
    qb_check chk = {0};
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda epilogue", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda epilogue");
    }
    qb_err err = {0};
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 5, &err), *gpu = cpu ? qb_ctx_new(QB_CUDA, 5, &err) : NULL;
    if (!gpu) qb_die("test_cuda_epilogue", &err);
    CHECK(&chk, gpu->gemm_epilogue && cpu->k->gemm_epilogue == NULL && gpu->k->gemm_epilogue != NULL,
          "epilogues on by default, a cuda entry and none on the cpu");
    test_entry(&chk, cpu, gpu);
    test_ops(&chk, cpu, gpu);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "cuda epilogue");
}

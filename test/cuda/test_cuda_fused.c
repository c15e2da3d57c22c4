/* test_cuda_fused.c: the fused ops' CUDA kernels (quant/cuda/fused.cu) against the unfused composition on the CPU
 * (test/quant/fused_cases.h): outputs and every input gradient within fp32 rounding (the GPU's sums and erff/expf/tanhf
 * differ from the CPU's by a few ulp; a fake-quant output may then round to the neighbouring level, and a clipped
 * element's STE may flip, in at most 1 element in 200); the model's fused path on CUDA is test_cuda_train's. Runs on a
 * GPU or under the CUDA emulator; exits 77 where neither is there. */
#include <math.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "../quant/fused_cases.h"

static qb_check chk;

/* got against want: elements outside atol + rtol |want| (or one fake-quant level, for outputs) at most n / 200. */
static void check_near(const char *what, const char *name, const float *got, const float *want, int64_t n, double step) {
    int64_t bad = 0, far = 0, worst = -1;
    double worst_d = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]), tol = 2e-5 + 2e-4 * fabs((double)want[i]);
        if (!(d <= tol)) {
            bad++;
            if (!(d <= step + tol)) far++;
            if (!(d <= worst_d)) worst_d = d, worst = i;
        }
    }
    CHECK(&chk, bad <= n / 200 && (step == 0 || far == 0),
          "%s: %s: %lld of %lld outside tolerance, %lld beyond one level (worst at %lld: %.9g vs %.9g)",
          name, what, (long long)bad, (long long)n, (long long)far, (long long)worst, worst >= 0 ? (double)got[worst] : 0.0,
          worst >= 0 ? (double)want[worst] : 0.0);
}

int main(void) {
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda fused", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda fused");
    }
    for (int i = 0; i < FC_N_CASES; i++) {
        const fc_case *c = &fc_cases[i];
        qb_err err = {0};
        qb_ctx *gpu = qb_ctx_new(QB_CUDA, 7, &err), *cpu = gpu ? qb_ctx_new(QB_CPU, 7, &err) : NULL;
        if (!cpu) qb_die("test_cuda_fused", &err);
        fc_result g, r;
        int rg = fc_run(gpu, c, true, &g), rc = fc_run(cpu, c, false, &r);
        if (CHECK(&chk, rg == 0 && rc == 0, "%s: cuda fused: %s; cpu unfused: %s", c->name, g.err, r.err) &&
            CHECK(&chk, g.n_out == r.n_out && g.n_in == r.n_in, "%s: outputs/inputs differ", c->name)) {
            double bound = (double)((1 << (c->bits - 1)) - 1);
            for (int k = 0; k < g.n_out; k++) {
                /* the fake-quantized outputs: the last one, and the layer norm's y (k 1) only where it is not quantized */
                bool quantized = c->kind != 2 || k == 2;
                check_near("output", c->name, g.out[k], r.out[k], g.out_n[k], quantized ? c->amax[c->kind == 2 ? 2 : 0] / bound : 0.0);
            }
            for (int k = 0; k < g.n_in; k++) check_near("input gradient", c->name, g.grad[k], r.grad[k], g.in_n[k], 0.0);
        }
        fc_free(&g);
        fc_free(&r);
        qb_ctx_free(gpu);
        qb_ctx_free(cpu);
    }
    return qb_check_finish(&chk, "cuda fused");
}

/* bench_fused.c: each fused fake-quant op (quant/op_fused.h) against the unfused ops it replaces, forward + backward
 * on the CPU at BERT-base's shapes for one layer (batch 8, seq 128: probabilities [8, 12, 128, 128], the intermediate
 * [1024, 3072], the residual block [1024, 768]), dropout on. Prints the median wall and CPU ms of each (fused and
 * unfused runs alternate) and the ratio unfused / fused.
 * Run: OMP_NUM_THREADS=2 ./build/bench/bench_fused [--reps N] [--batch B] [--seq S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "quant/op_fused.h"
#include "quant/quant.h"

static float *random_host(int64_t n, uint64_t s, float lo, float hi) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = lo + (hi - lo) * (float)((double)(s >> 11) / 9007199254740992.0);
    }
    return v;
}

typedef struct bench_in {
    int kind;  /* 0 softmax + dropout + fq, 1 GELU + fq, 2 add + fq + layer norm + fq out */
    int ndim;
    int64_t shape[4];
    float *x, *r, *dz, *dz2, *gamma, *beta;
} bench_in;

/* One forward + backward; returns 0. */
static int step(qb_ctx *ctx, const bench_in *b, bool fused) {
    quant_desc d = quant_desc_default();
    d.axis = -1;
    const float amax = 0.9f, amax_p = 0.2f;
    qb_fq_spec s = {amax, &d}, sp = {amax_p, &d};
    qb_ctx_step_reset(ctx);
    qb_tensor *x = qb_scale(ctx, qb_from_host(ctx, b->ndim, b->shape, b->x), 1.0f), *out;
    x->requires_grad = true;
    if (b->kind == 0) {
        out = fused ? qb_softmax_dropout_fq(ctx, x, 0.125f, NULL, 0.1f, &sp)
                    : qb_fake_quant(ctx, qb_dropout(ctx, qb_softmax(ctx, x, 0.125f, NULL), 0.1f), &amax_p, 1, &d);
    } else if (b->kind == 1) {
        out = fused ? qb_act_fq(ctx, QB_UNARY_GELU, x, &s) : qb_fake_quant(ctx, qb_gelu(ctx, x), &amax, 1, &d);
    } else {
        int64_t h = b->shape[b->ndim - 1];
        qb_tensor *r = qb_scale(ctx, qb_from_host(ctx, b->ndim, b->shape, b->r), 1.0f), *g = qb_from_host(ctx, 1, &h, b->gamma),
                  *be = qb_from_host(ctx, 1, &h, b->beta), *yq = NULL;
        r->requires_grad = g->requires_grad = be->requires_grad = true;
        if (fused) {
            out = qb_add_fq_layernorm(ctx, x, r, g, be, 1e-12f, &s, &s, &s, &yq);
        } else {
            out = qb_layernorm(ctx, qb_add(ctx, qb_fake_quant(ctx, x, &amax, 1, &d), qb_fake_quant(ctx, r, &amax, 1, &d)), g, be, 1e-12f);
            yq = qb_fake_quant(ctx, out, &amax, 1, &d);
        }
        qb_tensor *w = qb_from_host(ctx, b->ndim, b->shape, b->dz2);
        out = qb_add(ctx, qb_mul(ctx, out, w), yq); /* both outputs get a gradient */
    }
    if (!out || qb_backward_with_grad(ctx, out, b->dz)) qb_die("bench_fused", &ctx->err);
    return 0;
}

int main(int argc, char **argv) {
    int reps = 9, batch = 8, seq = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) seq = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_fused: unknown option %s (--reps N --batch B --seq S)\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 200 || batch < 1 || seq < 1) {
        fprintf(stderr, "bench_fused: --reps 1..200, --batch and --seq >= 1\n");
        return 2;
    }
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 3, &err);
    if (!ctx) qb_die("bench_fused", &err);
    ctx->training = true;
    int64_t tok = (int64_t)batch * seq;
    bench_in cases[3] = {{.kind = 0, .ndim = 4, .shape = {batch, 12, seq, seq}}, {.kind = 1, .ndim = 2, .shape = {tok, 3072}},
                         {.kind = 2, .ndim = 2, .shape = {tok, 768}}};
    static const char *const names[3] = {"softmax+dropout+fq [B,12,S,S]", "gelu+fq [B*S,3072]", "add+fq+layernorm+fq [B*S,768]"};
    for (int c = 0; c < 3; c++) {
        bench_in *b = &cases[c];
        int64_t n = 1;
        for (int k = 0; k < b->ndim; k++) n *= b->shape[k];
        int64_t h = b->shape[b->ndim - 1];
        b->x = random_host(n, 1, -3.0f, 3.0f);
        b->r = random_host(n, 2, -2.0f, 2.0f);
        b->dz = random_host(n, 3, -1.0f, 1.0f);
        b->dz2 = random_host(n, 4, -1.0f, 1.0f);
        b->gamma = random_host(h, 5, 0.5f, 1.5f);
        b->beta = random_host(h, 6, -0.5f, 0.5f);
        double wf[200], wu[200], cf[200], cu[200];
        for (int k = -2; k < reps; k++)
            for (int f = 1; f >= 0; f--) {
                double t0 = bench_now(), c0 = bench_cpu_now();
                step(ctx, b, f);
                if (k < 0) continue;
                (f ? wf : wu)[k] = 1e3 * (bench_now() - t0);
                (f ? cf : cu)[k] = 1e3 * (bench_cpu_now() - c0);
            }
        double mwf = bench_median(wf, reps), mwu = bench_median(wu, reps), mcf = bench_median(cf, reps), mcu = bench_median(cu, reps);
        printf("%-32s fused %8.2f ms (cpu %8.2f)  unfused %8.2f ms (cpu %8.2f)  unfused/fused %.2fx wall, %.2fx cpu\n", names[c], mwf, mcf,
               mwu, mcu, mwu / mwf, mcu / mcf);
        free(b->x), free(b->r), free(b->dz), free(b->dz2), free(b->gamma), free(b->beta);
    }
    qb_ctx_free(ctx);
    return 0;
}

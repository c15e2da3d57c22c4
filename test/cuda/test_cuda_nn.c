/* test_cuda_nn.c: the CUDA kernels of layer norm, softmax, dropout, embedding and the losses on what the op cases do
 * not reach, against the CPU backend: BERT-sized rows (h = 384, 768, and an unaligned one) with several row chunks of
 * the parameter gradients; attention rows of 128 and 384 with a padding mask; dropout masks bit for bit over a large
 * tensor at RNG offsets past 2^32; embedding gradients with many repeated ids (within 1e-6 of the largest value of the
 * sums in double, bit for bit with the CPU where every id's positions fall in one window of 32 sorted positions),
 * identical between two runs and between two
 * emulator seeds (a child process); the losses over many elements and cross-entropy with every row ignored (NaN, as
 * PyTorch); the distillation KL against the CPU. Runs on a GPU or under the CUDA emulator; exits 77 where neither is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "op_eval.h"

static double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* cuda vs cpu: the op suite's tolerance (same math, other summation orders). */
static void compare(qb_check *chk, const char *what, const float *got, const float *want, int64_t n) {
    qb_check_close(chk, what, got, want, n, 1e-5 * max_abs(want, n) + 1e-30, 1e-5);
}

static float *normal(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!x) abort();
    qb_rng_normal(x, n, 0.0f, 1.0f, seed, 0);
    return x;
}

/* Runs op case c on both contexts from the same inputs and upstream gradient; compares output and input gradients. */
static void compare_case(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu, const op_case *c, float **in, const op_case_aux *aux, uint64_t seed) {
    op_eval_result a, b;
    int ra = op_eval(cpu, c, in, aux, NULL, &a);
    float *up = ra ? NULL : normal(a.out_n, seed);
    op_eval_result_free(&a);
    ra = ra || op_eval(cpu, c, in, aux, up, &a);
    int rb = op_eval(gpu, c, in, aux, up, &b);
    char what[160];
    if (CHECK(chk, ra == 0 && rb == 0, "%s: cpu (%s) and cuda (%s) run", c->name, cpu->err.msg, gpu->err.msg)) {
        snprintf(what, sizeof what, "%s output", c->name);
        compare(chk, what, b.out, a.out, a.out_n);
        for (int i = 0; i < c->n_in; i++) {
            if (!c->differentiable[i]) continue;
            snprintf(what, sizeof what, "%s grad of input %d", c->name, i);
            compare(chk, what, b.grads[i], a.grads[i], op_case_numel(c, i));
        }
    }
    op_eval_result_free(&a);
    op_eval_result_free(&b);
    free(up);
}

/* ---- layer norm */

static qb_tensor *f_layernorm(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_layernorm(c, in[0], in[1], in[2], 1e-12f);
}

static void test_layernorm(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    /* h = 768 over 256 rows: four row chunks of parameter-gradient partials; h = 100: the unaligned path */
    static const int64_t shapes[][2] = {{64, 384}, {256, 768}, {9, 100}};
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], h = shapes[s][1];
        char name[64];
        snprintf(name, sizeof name, "layernorm [%lld, %lld]", (long long)rows, (long long)h);
        op_case c = {name, 3, {2, 1, 1}, {{rows, h}, {h}, {h}}, {1, 1, 1}, f_layernorm, 0, 0};
        float *in[3] = {normal(rows * h, 11 + s), normal(h, 12 + s), normal(h, 13 + s)};
        for (int64_t i = 0; i < rows * h; i++) in[0][i] = 3.0f + 2.0f * in[0][i]; /* mean and scale away from 0 and 1 */
        op_case_aux aux = {0};
        compare_case(chk, cpu, gpu, &c, in, &aux, 14 + s);
        for (int i = 0; i < 3; i++) free(in[i]);
    }
}

/* ---- softmax with a padding mask */

static qb_tensor *f_attention_softmax(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_softmax(c, in[0], 0.125f, in[1]);
}

static void test_softmax(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    /* scores [batch, heads, seq, seq] and a key padding mask [batch, 1, 1, seq] (HF's extended mask: 0 or -10000);
     * seq 77: rows not a multiple of 4; a bias [batch, 1, seq, 1] broadcast along each row */
    static const int64_t shapes[][4] = {{2, 3, 128, 128}, {1, 2, 384, 384}, {2, 2, 77, 77}};
    for (int s = 0; s < 4; s++) {
        const int64_t *sh = shapes[s < 3 ? s : 2];
        int64_t b = sh[0], seq = sh[3], n = sh[0] * sh[1] * sh[2] * sh[3];
        bool along_rows = s == 3;
        char name[80];
        snprintf(name, sizeof name, "softmax [%lld, %lld, %lld, %lld] mask %s", (long long)sh[0], (long long)sh[1], (long long)sh[2],
                 (long long)sh[3], along_rows ? "[b, 1, seq, 1]" : "[b, 1, 1, seq]");
        op_case c = {name, 2, {4, 4}, {{sh[0], sh[1], sh[2], sh[3]}, {b, 1, along_rows ? seq : 1, along_rows ? 1 : seq}}, {1, 0},
                     f_attention_softmax, 0, 0};
        float *in[2] = {normal(n, 21 + s), malloc((size_t)(b * seq) * sizeof(float))};
        for (int64_t i = 0; i < n; i++) in[0][i] *= 4.0f;
        for (int64_t k = 0; k < b * seq; k++)
            in[1][k] = along_rows ? -0.25f * (float)(k % 7) : k % seq < seq - 5 - 23 * (k / seq) ? 0.0f : -10000.0f;
        op_case_aux aux = {0};
        compare_case(chk, cpu, gpu, &c, in, &aux, 25 + s);
        free(in[0]);
        free(in[1]);
    }
}

/* ---- dropout: the CPU's mask bit for bit */

/* y = dropout(x, p) from RNG offset `offset`, and dx for upstream dy (NULL: forward only); 0 on success. */
static int run_dropout(qb_ctx *ctx, const float *x, const float *dy, int64_t n, float p, uint64_t offset, float *y, float *dx) {
    if (qb_ctx_step_reset(ctx)) return -1;
    ctx->training = true;
    ctx->no_grad = false;
    ctx->rng_counter = offset;
    qb_tensor *xt = qb_from_host(ctx, 1, &n, x);
    if (!xt) return -1;
    xt->requires_grad = true;
    qb_tensor *yt = qb_dropout(ctx, xt, p);
    if (!yt || qb_to_host(ctx, yt, y) || qb_backward_with_grad(ctx, yt, dy)) return -1;
    return qb_to_host(ctx, xt->grad, dx);
}

static void test_dropout(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    static const uint64_t offsets[] = {0, (1ull << 32) - 100000, (1ull << 40) + 12345};
    static const int64_t sizes[] = {1 << 20, (1 << 18) + 3};
    for (int o = 0; o < 3; o++)
        for (int s = 0; s < 2; s++) {
            int64_t n = sizes[s];
            float *x = normal(n, 31 + o), *dy = normal(n, 32 + o), *y[2], *dx[2];
            for (int k = 0; k < 2; k++) {
                y[k] = malloc((size_t)n * sizeof(float));
                dx[k] = malloc((size_t)n * sizeof(float));
            }
            int ra = run_dropout(cpu, x, dy, n, 0.1f, offsets[o], y[0], dx[0]);
            int rb = run_dropout(gpu, x, dy, n, 0.1f, offsets[o], y[1], dx[1]);
            char what[128];
            if (CHECK(chk, ra == 0 && rb == 0, "dropout n=%lld: cpu (%s), cuda (%s)", (long long)n, cpu->err.msg, gpu->err.msg)) {
                int64_t dropped = 0;
                for (int64_t i = 0; i < n; i++) dropped += y[0][i] == 0.0f;
                CHECK(chk, fabs((double)dropped / (double)n - 0.1) < 0.01, "dropout drops %lld of %lld", (long long)dropped, (long long)n);
                snprintf(what, sizeof what, "dropout n=%lld offset %llu: output bit for bit", (long long)n, (unsigned long long)offsets[o]);
                qb_check_close(chk, what, y[1], y[0], n, 0.0, 0.0);
                snprintf(what, sizeof what, "dropout n=%lld offset %llu: gradient bit for bit", (long long)n, (unsigned long long)offsets[o]);
                qb_check_close(chk, what, dx[1], dx[0], n, 0.0, 0.0);
            }
            for (int k = 0; k < 2; k++) {
                free(y[k]);
                free(dx[k]);
            }
            free(x);
            free(dy);
        }
}

/* ---- embedding gradient */

/* dweight (rows x h, initial values g0) += the scatter of dy by ids, through ctx's embedding_grad kernel. */
static int run_embedding_grad(qb_ctx *ctx, const float *g0, int64_t rows, int64_t h, const float *dy, const int32_t *ids, int64_t n,
                              int64_t pad, float *out) {
    if (qb_ctx_step_reset(ctx)) return -1;
    int64_t gshape[2] = {rows, h}, dshape[2] = {n, h};
    qb_tensor *g = qb_from_host(ctx, 2, gshape, g0), *d = qb_from_host(ctx, 2, dshape, dy);
    int32_t *dids = qb_upload_i32(ctx, ids, n);
    if (!g || !d || !dids || QB_KERNEL(ctx, "embedding", embedding_grad, g->data, d->data, dids, n, h, pad)) return -1;
    return qb_to_host(ctx, g, out);
}

typedef struct emb_case {
    const char *name;
    int64_t rows, h, n, pad;
    int kind;          /* 0 skewed vocabulary, 1 token types (long runs), 2 positions t % rows */
    bool bit_for_bit;  /* every id's positions fall in one window of 32 sorted positions */
} emb_case;

static const emb_case emb_cases[] = {
    {"word ids (skewed, padding 0)", 1000, 768, 4096, 0, 0, false},
    {"token types (2 ids, long runs)", 2, 384, 4096, -1, 1, false},
    {"positions (each id 8 times)", 512, 100, 4096, -1, 2, true},
};

static void emb_inputs(const emb_case *e, int32_t *ids, float **g0, float **dy) {
    for (int64_t t = 0; t < e->n; t++) {
        double u = qb_rng_uniform(77, (uint64_t)t);
        ids[t] = e->kind == 0 ? (int32_t)(e->rows * u * u * u) : e->kind == 1 ? (t % 512 >= 200) : (int32_t)(t % e->rows);
    }
    *g0 = normal(e->rows * e->h, 78);
    *dy = normal(e->n * e->h, 79);
}

/* FNV-1a over the bytes of n floats. */
static uint64_t hash_floats(const float *x, int64_t n) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < (size_t)n * sizeof(float); i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The hash of every embedding case's cuda gradient (0 on failure). */
static uint64_t embedding_hash(qb_ctx *gpu) {
    uint64_t h = 0;
    for (size_t c = 0; c < sizeof emb_cases / sizeof emb_cases[0]; c++) {
        const emb_case *e = &emb_cases[c];
        int32_t *ids = malloc((size_t)e->n * sizeof(int32_t));
        float *g0, *dy, *out = malloc((size_t)(e->rows * e->h) * sizeof(float));
        emb_inputs(e, ids, &g0, &dy);
        if (run_embedding_grad(gpu, g0, e->rows, e->h, dy, ids, e->n, e->pad, out)) return 0;
        h = h * 31 + hash_floats(out, e->rows * e->h);
        free(ids);
        free(g0);
        free(dy);
        free(out);
    }
    return h;
}

static void test_embedding(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    for (size_t c = 0; c < sizeof emb_cases / sizeof emb_cases[0]; c++) {
        const emb_case *e = &emb_cases[c];
        int64_t ng = e->rows * e->h;
        int32_t *ids = malloc((size_t)e->n * sizeof(int32_t));
        float *g0, *dy, *want = malloc((size_t)ng * sizeof(float)), *got = malloc((size_t)ng * sizeof(float)),
                         *again = malloc((size_t)ng * sizeof(float));
        emb_inputs(e, ids, &g0, &dy);
        int ra = run_embedding_grad(cpu, g0, e->rows, e->h, dy, ids, e->n, e->pad, want);
        int rb = run_embedding_grad(gpu, g0, e->rows, e->h, dy, ids, e->n, e->pad, got);
        int rc = run_embedding_grad(gpu, g0, e->rows, e->h, dy, ids, e->n, e->pad, again);
        char what[160];
        if (CHECK(chk, ra == 0 && rb == 0 && rc == 0, "embedding gradient %s: cpu (%s), cuda (%s)", e->name, cpu->err.msg, gpu->err.msg)) {
            /* the sums in double: the CPU's long sequential sums are themselves ~1e-6 off, another order cannot match
             * them to 1e-6, so both are held to the exact sums */
            double *exact = malloc((size_t)ng * sizeof(double));
            float *exact_f = malloc((size_t)ng * sizeof(float));
            for (int64_t i = 0; i < ng; i++) exact[i] = g0[i];
            for (int64_t t = 0; t < e->n; t++)
                if (ids[t] != e->pad)
                    for (int64_t j = 0; j < e->h; j++) exact[ids[t] * e->h + j] += dy[t * e->h + j];
            for (int64_t i = 0; i < ng; i++) exact_f[i] = (float)exact[i];
            double tol = 1e-6 * max_abs(exact_f, ng);
            snprintf(what, sizeof what, "embedding gradient, %s: cuda vs exact sums", e->name);
            qb_check_close(chk, what, got, exact_f, ng, tol, 0.0);
            snprintf(what, sizeof what, "embedding gradient, %s: cpu vs exact sums (reference)", e->name);
            qb_check_close(chk, what, want, exact_f, ng, 4 * tol, 0.0);
            snprintf(what, sizeof what, "embedding gradient, %s: cuda vs cpu%s", e->name, e->bit_for_bit ? " bit for bit" : "");
            qb_check_close(chk, what, got, want, ng, e->bit_for_bit ? 0.0 : 5 * tol, 0.0);
            free(exact);
            free(exact_f);
            CHECK(chk, memcmp(got, again, (size_t)ng * sizeof(float)) == 0, "embedding gradient, %s: two runs equal bit for bit", e->name);
            if (e->pad >= 0) {
                int bad = 0;
                for (int64_t j = 0; j < e->h; j++) bad += got[e->pad * e->h + j] != g0[e->pad * e->h + j];
                CHECK(chk, bad == 0, "embedding gradient, %s: the padding row is untouched (%d changed)", e->name, bad);
            }
        }
        free(ids);
        free(g0);
        free(dy);
        free(want);
        free(got);
        free(again);
    }
    /* another thread order: a child process under another emulator seed (on a GPU: another run) */
    uint64_t mine = embedding_hash(gpu), theirs = 0;
    const char *seed = getenv("QB_CUDA_EMU_SEED");
    char exe[4096] = "", cmd[4200];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) exe[len] = 0;
    snprintf(cmd, sizeof cmd, "QB_CUDA_EMU_SEED=%d '%s' --embedding-hash", seed && atoi(seed) == 5 ? 6 : 5, exe);
    FILE *child = len > 0 ? popen(cmd, "r") : NULL;
    int st = -1;
    if (child) {
        if (fscanf(child, "%llx", (unsigned long long *)&theirs) != 1) theirs = 0;
        st = pclose(child);
    }
    CHECK(chk, st == 0 && mine != 0 && mine == theirs, "embedding gradients under another thread order (%s): %016llx vs %016llx", cmd,
          (unsigned long long)theirs, (unsigned long long)mine);
}

/* ---- losses */

static qb_tensor *f_cross_entropy(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { return qb_cross_entropy(c, in[0], a->ints, -100); }
static qb_tensor *f_mse(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_mse_loss(c, in[0], in[1]);
}
static qb_tensor *f_bce(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_bce_with_logits(c, in[0], in[1]);
}

static qb_tensor *f_distill_kl(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    return qb_distill_kl(c, in[0], in[1], 2.0f);
}

static void test_losses(qb_check *chk, qb_ctx *cpu, qb_ctx *gpu) {
    /* distillation KL of student and teacher logits [64, 384] at temperature 2 (the teacher gets no gradient) */
    op_case kd = {"distill_kl [64, 384]", 2, {2, 2}, {{64, 384}, {64, 384}}, {1, 0}, f_distill_kl, 0, 0};
    float *kin[2] = {normal(64 * 384, 51), normal(64 * 384, 52)};
    op_case_aux no_ints = {0};
    compare_case(chk, cpu, gpu, &kd, kin, &no_ints, 53);
    free(kin[0]);
    free(kin[1]);
    /* SQuAD-like start logits: 64 rows of 384, some rows ignored */
    int32_t labels[64];
    for (int r = 0; r < 64; r++) labels[r] = r % 7 == 3 ? -100 : (r * 37) % 384;
    op_case ce = {"cross_entropy [64, 384]", 1, {2}, {{64, 384}}, {1}, f_cross_entropy, 0, 0};
    op_case_aux aux = {labels, 64, 1, {64}};
    float *x = normal(64 * 384, 41);
    compare_case(chk, cpu, gpu, &ce, &x, &aux, 42);
    free(x);
    /* every row ignored: NaN loss as torch (0 / 0), no gradient */
    int32_t ignored[6] = {-100, -100, -100, -100, -100, -100};
    op_case ce0 = {"cross_entropy all ignored", 1, {2}, {{6, 5}}, {1}, f_cross_entropy, 0, 0};
    op_case_aux aux0 = {ignored, 6, 1, {6}};
    x = normal(30, 43);
    float one = 1.0f;
    op_eval_result r;
    if (CHECK(chk, op_eval(gpu, &ce0, &x, &aux0, &one, &r) == 0, "cross_entropy all ignored: %s", gpu->err.msg)) {
        CHECK(chk, isnan(r.out[0]), "cross_entropy with every row ignored is NaN (got %g)", r.out[0]);
        CHECK(chk, max_abs(r.grads[0], 30) == 0.0, "cross_entropy with every row ignored: zero gradient");
        op_eval_result_free(&r);
    }
    free(x);
    /* mse and bce over 100003 elements: 25 partial sums; the losses equal bit for bit between runs */
    int64_t n = 100003;
    op_case cases[2] = {{"mse [100003]", 2, {1, 1}, {{n}, {n}}, {1, 1}, f_mse, 0, 0}, {"bce_with_logits [100003]", 2, {1, 1}, {{n}, {n}}, {1, 0}, f_bce, 0, 0}};
    for (int k = 0; k < 2; k++) {
        float *in[2] = {normal(n, 44 + k), normal(n, 46 + k)};
        if (k == 1)
            for (int64_t i = 0; i < n; i++) in[1][i] = 0.5f + 0.5f * tanhf(in[1][i]);
        op_case_aux none = {0};
        compare_case(chk, cpu, gpu, &cases[k], in, &none, 48 + k);
        op_eval_result a, b;
        if (CHECK(chk, op_eval(gpu, &cases[k], in, &none, NULL, &a) == 0 && op_eval(gpu, &cases[k], in, &none, NULL, &b) == 0, "%s: %s",
                  cases[k].name, gpu->err.msg))
            CHECK(chk, memcmp(a.out, b.out, sizeof(float)) == 0, "%s: two runs give the same bits (%.9g, %.9g)", cases[k].name, a.out[0], b.out[0]);
        op_eval_result_free(&a);
        op_eval_result_free(&b);
        free(in[0]);
        free(in[1]);
    }
}

int main(int argc, char **argv) {
    qb_check chk = {0};
    if (qb_cuda_device_count() == 0) {
        if (argc > 1) return 1;
        qb_check_skip(&chk, "cuda nn kernels", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda nn kernels");
    }
    qb_err err = {0};
    qb_ctx *gpu = qb_ctx_new(QB_CUDA, 9, &err);
    if (!gpu) qb_die("test_cuda_nn", &err);
    if (argc > 1 && strcmp(argv[1], "--embedding-hash") == 0) {
        printf("%016llx\n", (unsigned long long)embedding_hash(gpu));
        qb_ctx_free(gpu);
        return 0;
    }
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 9, &err);
    if (!cpu) qb_die("test_cuda_nn", &err);
    test_layernorm(&chk, cpu, gpu);
    test_softmax(&chk, cpu, gpu);
    test_dropout(&chk, cpu, gpu);
    test_embedding(&chk, cpu, gpu);
    test_losses(&chk, cpu, gpu);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "cuda nn kernels");
}

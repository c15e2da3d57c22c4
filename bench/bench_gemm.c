/* bench_gemm.c: GEMM GFLOP/s over a BERT training step's linear-layer shapes (bench_gemm.h), BERT-base and MiniLM,
 * 1 and 2 threads: OpenBLAS sgemm with the core in use (and with each core this CPU runs, --cores all, one child
 * process per core since OpenBLAS reads OPENBLAS_CORETYPE when it loads), OpenBLAS sbgemm where the build exports it,
 * oneDNN's sgemm and bf16 GEMM (fp32 accumulation) where libdnnl is installed, and PyTorch's (QB_TORCH_PYTHON).
 * Run: QB_SOURCE_ROOT=$PWD QB_TORCH_PYTHON=python3 build/bench/bench_gemm [--cores all|NAME,...] [--reps N] */
#include "bench_gemm.h"
#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/blas_core.h"

typedef struct shape_set {
    const char *name;
    int64_t tokens, hidden, inter;
} shape_set;

static const shape_set configs[] = {{"bert-base (batch 8, seq 128)", 1024, 768, 3072}, {"minilm (batch 12, seq 128)", 1536, 384, 1536}};

static void openblas_sgemm(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                           int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* Optional libraries, looked up at run time (none is a build dependency). */
typedef void (*sbgemm_t)(int, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float, float *, int);
typedef int (*dnnl_sgemm_t)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t, float, float *,
                            int64_t);
typedef int (*dnnl_bf16_t)(char, char, int64_t, int64_t, int64_t, float, const uint16_t *, int64_t, const uint16_t *, int64_t, float,
                           float *, int64_t);
typedef struct optional_gemms {
    sbgemm_t sbgemm;
    dnnl_sgemm_t dnnl_sgemm;
    dnnl_bf16_t dnnl_bf16;
} optional_gemms;

static void call_sbgemm(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                        int ldc) {
    ((optional_gemms *)ctx)->sbgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                                    ldb, 0.0f, c, ldc);
}
static void call_dnnl_sgemm(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                            int ldc) {
    ((optional_gemms *)ctx)->dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
static void call_dnnl_bf16(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                           int ldc) {
    ((optional_gemms *)ctx)->dnnl_bf16(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

static void set_threads(int t) {
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

/* OpenBLAS sgemm rows for the core in use. */
static void run_openblas(int reps) {
    for (size_t s = 0; s < sizeof configs / sizeof configs[0]; s++)
        for (int t = 1; t <= 2; t++) {
            set_threads(t);
            double r = bench_gemm_rate(openblas_sgemm, NULL, 4, configs[s].tokens, configs[s].hidden, configs[s].inter, reps);
            printf("%-30s threads %d  OpenBLAS %-12s sgemm %7.1f GFLOP/s\n", configs[s].name, t, openblas_get_corename(), r);
            fflush(stdout);
        }
}

/* Runs this program once per core with OPENBLAS_CORETYPE set (OpenBLAS only). */
static void run_cores(const char *self, const char *list, int reps) {
    char buf[512], reps_s[16];
    snprintf(buf, sizeof buf, "%s", list);
    snprintf(reps_s, sizeof reps_s, "%d", reps);
    for (char *core = strtok(buf, ", "); core; core = strtok(NULL, ", ")) {
        pid_t pid = fork();
        if (pid == 0) {
            setenv("OPENBLAS_CORETYPE", core, 1);
            execl(self, self, "--openblas-only", "--reps", reps_s, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (pid > 0) waitpid(pid, &status, 0);
        if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "bench_gemm: core %s failed\n", core);
    }
}

static void usage(FILE *out) {
    fprintf(out, "usage: bench_gemm [--cores all|NAME,...] [--reps N]\n"
                 "  GEMM GFLOP/s over a BERT step's linear-layer shapes (BERT-base and MiniLM, 1 and 2 threads):\n"
                 "  OpenBLAS sgemm (each listed core in its own process), OpenBLAS sbgemm and oneDNN sgemm/bf16 where\n"
                 "  available, and PyTorch's when QB_TORCH_PYTHON names a python with torch (QB_SOURCE_ROOT: the checkout).\n");
}

int main(int argc, char **argv) {
    const char *cores = NULL;
    int reps = 7;
    bool openblas_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--openblas-only")) openblas_only = true;
        else if (!strcmp(argv[i], "--cores") && i + 1 < argc) cores = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_gemm: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64) reps = 7;
    if (openblas_only) {
        run_openblas(reps);
        return 0;
    }
    char line[1024];
    qb_blas_core_summary(line, sizeof line);
    printf("%s\n", line);
    fflush(stdout); /* before the children write to the same stdout */
    if (cores) {
        char all[256];
        if (!strcmp(cores, "all")) qb_blas_core_runnable(all, sizeof all);
        else snprintf(all, sizeof all, "%s", cores);
        run_cores("/proc/self/exe", all, reps);
    } else run_openblas(reps);

    optional_gemms g = {(sbgemm_t)dlsym(RTLD_DEFAULT, "cblas_sbgemm"), NULL, NULL};
    void *dnnl = dlopen("libdnnl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!dnnl) dnnl = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (dnnl) {
        g.dnnl_sgemm = (dnnl_sgemm_t)dlsym(dnnl, "dnnl_sgemm");
        g.dnnl_bf16 = (dnnl_bf16_t)dlsym(dnnl, "dnnl_gemm_bf16bf16f32");
    }
    if (!g.sbgemm) printf("OpenBLAS sbgemm: not in this build\n");
    if (!dnnl) printf("oneDNN: libdnnl not installed (apt-get install libdnnl2)\n");
    for (size_t s = 0; s < sizeof configs / sizeof configs[0]; s++)
        for (int t = 1; t <= 2; t++) {
            const shape_set *c = &configs[s];
            set_threads(t);
            if (g.sbgemm)
                printf("%-30s threads %d  OpenBLAS sbgemm        %7.1f GFLOP/s\n", c->name, t,
                       bench_gemm_rate(call_sbgemm, &g, 2, c->tokens, c->hidden, c->inter, reps));
            if (g.dnnl_sgemm)
                printf("%-30s threads %d  oneDNN sgemm          %7.1f GFLOP/s\n", c->name, t,
                       bench_gemm_rate(call_dnnl_sgemm, &g, 4, c->tokens, c->hidden, c->inter, reps));
            if (g.dnnl_bf16)
                printf("%-30s threads %d  oneDNN bf16 gemm      %7.1f GFLOP/s\n", c->name, t,
                       bench_gemm_rate(call_dnnl_bf16, &g, 2, c->tokens, c->hidden, c->inter, reps));
            double fp32, bf16;
            char version[256] = "";
            char nthreads[8];
            snprintf(nthreads, sizeof nthreads, "%d", t);
            setenv("OMP_NUM_THREADS", nthreads, 1);
            if (bench_gemm_torch(c->tokens, c->hidden, c->inter, reps, &fp32, &bf16, version, sizeof version) == 0)
                printf("%-30s threads %d  PyTorch sgemm %7.1f, bf16 %7.1f GFLOP/s  (%s)\n", c->name, t, fp32, bf16, version);
            fflush(stdout);
        }
    if (dnnl) dlclose(dnnl);
    return 0;
}

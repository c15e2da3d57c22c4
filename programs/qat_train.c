/* qat_train.c: the qat-train program: one run config (INI) plus section.key=value overrides, and the task it names:
 * calibrate, train, eval, qat (calibrate -> train -> eval) on SQuAD, or demo. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "base/blas_core.h"
#include "demo_task.h"
#include "qat_config.h"
#include "squad_tasks.h"

static void usage(FILE *out) {
    qat_config c;
    qat_config_defaults(&c);
    fprintf(out, "usage: qat-train CONFIG.ini [section.key=value ...]\n       qat-train --help | --version\n\nkeys and defaults:\n");
    qat_config_print(&c, out);
}

/* Version, build options, BLAS core and CUDA devices; the "BLAS cores" line lists one core per kernel family. */
static void print_version(void) {
    const qb_blas_core_info *b = qb_blas_core_get();
    char core[400], feats[160], cores[160], cuda[512] = "";
    qb_blas_core_describe(core, sizeof core);
    qb_cpu_features_format(&b->cpu, feats, sizeof feats);
    qb_blas_core_runnable(cores, sizeof cores);
    printf("qat-train %s\nbuild: %s\n", QB_VERSION, QB_BUILD_OPTIONS);
    printf("BLAS: %s\nBLAS core: %s\nBLAS cores this CPU runs: %s\n", b->library[0] ? b->library : "none", core, cores);
    printf("CPU: %s [%s], %d OpenMP threads\n", b->cpu.brand[0] ? b->cpu.brand : "unknown", feats, omp_get_max_threads());
    qb_cuda_describe(cuda, sizeof cuda);
    printf("CUDA: %s\n", cuda);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        print_version();
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    qb_err err = {0};
    qat_config c;
    qat_config_defaults(&c);
    qat_config_source src = {.path = argv[1], .argc = argc - 2, .argv = argv + 2};
    if (qat_config_load(&c, &src, &err) || qat_config_validate(&c, &src, &err)) qb_die("qat-train", &err);
    if (c.threads > 0) omp_set_num_threads((int)c.threads);
    char blas[768];
    qb_blas_core_summary(blas, sizeof blas);
    printf("qat-train %s: %s; %d threads; GEMMs in %s%s\n", QB_VERSION, blas, omp_get_max_threads(), c.precision,
           strcmp(c.precision, "bf16") == 0 ? " (oneDNN, fp32 accumulation)" : "");
    int rc = strcmp(c.task, "demo") == 0 ? demo_task_run(&c, &err) : squad_task_run(&c, &src, &err);
    if (rc) qb_die("qat-train", &err);
    return 0;
}

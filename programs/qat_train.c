/* qat_train.c: the qat-train program: one run config (INI) plus section.key=value overrides, and the task it names:
 * calibrate, train, eval, qat (calibrate -> train -> eval) on SQuAD, or demo. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "base/blas_core.h"
#include "demo_task.h"
#include "dist/comm.h"
#include "qat_config.h"
#include "run_output.h"
#include "squad_tasks.h"

static void usage(FILE *out) {
    qat_config c;
    qat_config_defaults(&c);
    fprintf(out, "usage: qat-train CONFIG.ini [section.key=value ...]\n"
                 "       qat-train --check CONFIG.ini [section.key=value ...]   (check the config's keys and values; runs nothing)\n"
                 "       qat-train --help | --version\n\nkeys and defaults:\n");
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
    char gemm[64];
    qb_cpu_gemm_describe(qat_config_cpu_gemm(NULL), gemm, sizeof gemm);
    printf("CPU fp32 GEMM: %s (run.cpu_gemm, QB_CPU_GEMM: onednn or openblas)\n", gemm);
    qb_cuda_describe(cuda, sizeof cuda);
    printf("CUDA: %s\n", cuda);
}

/* qat-train --check CONFIG.ini [overrides]: the keys and values checked as a run checks them (files and this build's
 * or machine's devices aside); nothing is run or written. */
static int check_config(int argc, char **argv) {
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    qat_config c;
    qat_config_defaults(&c);
    qat_config_source src = {.path = argv[2], .argc = argc - 3, .argv = argv + 3, .check_only = true};
    qb_err err = {0};
    if (qat_config_load(&c, &src, &err) || qat_config_validate(&c, &src, &err)) qb_die("qat-train", &err);
    printf("%s: ok (task %s, device %s, output_dir %s)\n", src.path, c.task, c.device, c.output_dir);
    return 0;
}

/* Several ranks: rank 0 alone prints progress (the others' stdout goes to /dev/null); errors stay on stderr. */
static void dist_start(qb_comm *comm) {
    if (comm->rank != 0 && !freopen("/dev/null", "w", stdout)) fprintf(stderr, "qat-train: rank %d: cannot silence stdout\n", comm->rank);
}

/* Several ranks on GPUs: run.device cuda means cuda:<local rank>; then the nccl backend (QB_COMM_BACKEND). */
static int dist_device(qb_comm *comm, qat_config *c, qb_err *err) {
    qb_device dev;
    int ordinal;
    if (comm->size == 1 || qb_device_parse(c->device, &dev, &ordinal) || dev != QB_CUDA) return 0;
    if (!strchr(c->device, ':') && qb_cuda_device_count() > 0) {
        if (qb_comm_gpu_ordinal(comm, -1, qb_cuda_device_count(), &ordinal, err)) return qb_err_context(err, "run.device");
        snprintf(c->device, sizeof c->device, "cuda:%d", ordinal);
    }
    return 0;
}

/* The error of this rank; on several ranks it names the rank and ends the whole job (MPI_Abort). */
static _Noreturn void dist_die(qb_comm *comm, const qb_err *err) {
    if (comm->size == 1) qb_die("qat-train", err);
    fprintf(stderr, "qat-train: rank %d/%d: %s\n", comm->rank, comm->size, err->msg);
    qb_comm_abort(comm, 1);
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
    if (!strcmp(argv[1], "--check")) return check_config(argc, argv);
    if (!strcmp(argv[1], "--version")) {
        print_version();
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    qb_err err = {0};
    qb_comm comm;
    if (qb_comm_open(&comm, &err)) qb_die("qat-train", &err);
    if (comm.size > 1) dist_start(&comm);
    qat_config c;
    qat_config_defaults(&c);
    qat_config_source src = {.path = argv[1], .argc = argc - 2, .argv = argv + 2};
    if (qat_config_load(&c, &src, &err) || dist_device(&comm, &c, &err) || qat_config_validate(&c, &src, &err)) dist_die(&comm, &err);
    if (comm.size > 1) {
        qb_device dev;
        int ordinal;
        if (!qb_device_parse(c.device, &dev, &ordinal) && dev == QB_CUDA && qb_comm_use_gpu(&comm, ordinal, &err)) dist_die(&comm, &err);
        printf("qat-train: %d ranks (%s, %s backend), %d on this host%s%s\n", comm.size, comm.launcher, comm.be->name, comm.local_size,
               comm.be->device_buffers ? "; rank 0 on " : "", comm.be->device_buffers ? c.device : "");
    }
    if (c.threads > 0) omp_set_num_threads((int)c.threads);
    else if (comm.local_size > 1 && !getenv("OMP_NUM_THREADS")) /* the host's cores shared by its ranks */
        omp_set_num_threads(omp_get_num_procs() > comm.local_size ? omp_get_num_procs() / comm.local_size : 1);
    if (comm.size > 1 && strcmp(c.task, "demo") == 0) {
        qb_errorf(&err, "run.task: demo runs in one process (started on %d ranks)", comm.size);
        dist_die(&comm, &err);
    }
    char blas[768];
    qb_blas_core_summary(blas, sizeof blas);
    char gemm[64] = "";
    if (strcmp(c.device, "cpu") == 0) qb_cpu_gemm_describe(qat_config_cpu_gemm(&c), gemm, sizeof gemm);
    printf("qat-train %s: %s; %d threads; device %s; GEMMs in %s%s%s%s\n", QB_VERSION, blas, omp_get_max_threads(), c.device, c.precision,
           strcmp(c.precision, "bf16") == 0 && strcmp(c.device, "cpu") == 0 ? " (oneDNN, fp32 accumulation)" : "", gemm[0] ? ", fp32 by " : "",
           gemm);
    run_output out;
    bool bad = comm.rank == 0 && run_output_open(&out, &c, &src, &err); /* rank 0 writes and holds the lock */
    if (qb_comm_agree(&comm, bad, "opening run.output_dir", &err)) dist_die(&comm, &err);
    int rc = strcmp(c.task, "demo") == 0 ? demo_task_run(&c, &err) : squad_task_run(&c, &src, &comm, &err);
    if (comm.rank == 0) run_output_close(&out, rc != 0);
    if (rc) dist_die(&comm, &err);
    qb_comm_close(&comm);
    return 0;
}

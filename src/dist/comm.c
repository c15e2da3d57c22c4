/* comm.c: see comm.h. The launcher detection, the self backend and the backend-neutral collectives. */
#include "dist/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dist/comm_backend.h"

#define DEFAULT_TIMEOUT_S 45.0

double qb_comm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qb_comm_type_size(qb_comm_type t) { return t == QB_COMM_F32 ? 4 : 8; }

/* ---- self: one process; every collective is the identity */
static int self_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err) {
    req->impl = NULL;
    return 0;
}
static int self_wait(qb_comm *c, qb_comm_req *req, qb_err *err) { return 0; }
static int self_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) { return 0; }
static int self_gatherv(qb_comm *c, const void *send, int64_t bytes, void *recv, const int64_t *counts, const int64_t *displs, int root,
                        const char *what, qb_err *err) {
    if (recv && bytes && recv != send) memmove((char *)recv + displs[0], send, (size_t)bytes);
    return 0;
}
static _Noreturn void self_abort(qb_comm *c, int code) { exit(code); }
static void self_close(qb_comm *c) {}

static const qb_comm_backend self_backend = {.name = "self", .allreduce_start = self_allreduce_start, .wait = self_wait,
                                             .broadcast = self_broadcast, .gatherv = self_gatherv, .abort = self_abort,
                                             .close = self_close};

void qb_comm_open_self(qb_comm *c) {
    *c = (qb_comm){.be = &self_backend, .rank = 0, .size = 1, .local_rank = 0, .local_size = 1, .timeout_s = DEFAULT_TIMEOUT_S};
    snprintf(c->launcher, sizeof c->launcher, "none");
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* Which launcher started this process: "mpirun" (Open MPI's, also mpiexec), "pmi" (PMI/PMIx: MPICH's hydra, srun
 * --mpi=pmix), "srun" (Slurm task), or NULL. */
static const char *detect_launcher(void) {
    if (env("OMPI_COMM_WORLD_SIZE")) return "mpirun";
    if (env("PMIX_RANK") || env("PMI_RANK") || env("PMI_SIZE")) return "pmi";
    const char *tasks = env("SLURM_NTASKS");
    if (env("SLURM_PROCID") && env("SLURM_STEP_ID") && tasks && atoi(tasks) > 1) return "srun";
    return NULL;
}

/* The rendezvous goes over TCP (comm_tcp.c): forced by QB_COMM_BOOTSTRAP=tcp, or torchrun's variables without an
 * MPI launcher, or srun without an MPI plugin (no PMI variables) where MASTER_ADDR is set. */
static bool tcp_rendezvous(const char *launcher) {
    const char *force = env("QB_COMM_BOOTSTRAP");
    if (force) return strcmp(force, "tcp") == 0;
    const char *ws = env("WORLD_SIZE");
    if (!launcher) return ws && atoi(ws) > 1;
    return strcmp(launcher, "srun") == 0 && env("MASTER_ADDR");
}

int qb_comm_open(qb_comm *c, qb_err *err) {
    qb_comm_open_self(c);
    const char *t = env("QB_COMM_TIMEOUT");
    if (t) {
        char *end;
        double v = strtod(t, &end);
        if (*end || !(v > 0)) return qb_errorf(err, "QB_COMM_TIMEOUT: '%s' is not a positive number of seconds", t);
        c->timeout_s = v;
    }
    const char *boot = env("QB_COMM_BOOTSTRAP");
    if (boot && strcmp(boot, "tcp") && strcmp(boot, "mpi"))
        return qb_errorf(err, "QB_COMM_BOOTSTRAP: '%s' (expected tcp or mpi)", boot);
    const char *launcher = detect_launcher();
    if (tcp_rendezvous(launcher)) {
        snprintf(c->launcher, sizeof c->launcher, "%s", env("TORCHELASTIC_RUN_ID") ? "torchrun" : launcher ? launcher : "env");
        return qb_comm_tcp_open(c, err);
    }
    if (!launcher) {
        const char *ws = env("WORLD_SIZE");
        if (ws && atoi(ws) > 1)
            return qb_errorf(err, "WORLD_SIZE=%s but QB_COMM_BOOTSTRAP=mpi and no MPI launcher (start the ranks with mpirun, or drop QB_COMM_BOOTSTRAP)", ws);
        return 0;
    }
    snprintf(c->launcher, sizeof c->launcher, "%s", launcher);
#ifdef QB_HAVE_MPI
    return qb_comm_mpi_open(c, err);
#else
    return qb_errorf(err, "started by %s but this qdqbert was built without MPI (meson -Dmpi=enabled, libopenmpi-dev; or torchrun's "
                          "variables with MASTER_ADDR for the TCP rendezvous)", launcher);
#endif
}

int qb_comm_gpu_ordinal(const qb_comm *c, int requested, int visible, int *ordinal, qb_err *err) {
    *ordinal = requested;
    if (requested >= 0 || c->size == 1) {
        if (requested < 0) *ordinal = 0;
        return 0;
    }
    if (visible == 1 && c->local_size > 1 && env("CUDA_VISIBLE_DEVICES") && !strchr(env("CUDA_VISIBLE_DEVICES"), ','))
        return *ordinal = 0, 0; /* the launcher gave each rank its own GPU */
    if (c->local_rank >= visible)
        return qb_errorf(err, "run.device cuda on %d ranks: local rank %d has no GPU (%d visible on this host; one process per GPU)", c->size,
                         c->local_rank, visible);
    *ordinal = c->local_rank;
    return 0;
}

int qb_comm_use_gpu(qb_comm *c, int ordinal, qb_err *err) {
    if (c->size == 1) return 0;
    const char *want = env("QB_COMM_BACKEND");
    if (want && strcmp(want, "nccl") && strcmp(want, "mpi") && strcmp(want, "host"))
        return qb_errorf(err, "QB_COMM_BACKEND: '%s' (expected nccl, or mpi/host to stage GPU buffers through the host backend)", want);
    if (want && strcmp(want, "nccl")) return 0;
#ifdef QB_HAVE_NCCL
    return qb_comm_nccl_open(c, ordinal, err);
#else
    if (want) return qb_errorf(err, "QB_COMM_BACKEND=nccl: this build has no NCCL (a CUDA build finds it in gpu_prefix/lib64)");
    return 0;
#endif
}

void qb_comm_close(qb_comm *c) {
    if (c->be) c->be->close(c);
    double timeout = c->timeout_s;
    qb_comm_open_self(c);
    c->timeout_s = timeout;
}

_Noreturn void qb_comm_abort(qb_comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    c->be->abort(c, code);
    exit(code);
}

int qb_comm_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, const char *what, qb_comm_req *req,
                            qb_err *err) {
    req->impl = NULL;
    req->what = what;
    if (count < 0 || count > QB_COMM_MAX_COUNT)
        return qb_errorf(err, "%s: all-reduce of %lld elements (at most %lld per call)", what, (long long)count, (long long)QB_COMM_MAX_COUNT);
    return c->be->allreduce_start(c, buf, count, t, op, req, err);
}

int qb_comm_wait(qb_comm *c, qb_comm_req *req, qb_err *err) { return c->be->wait(c, req, err); }

int qb_comm_allreduce(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, const char *what, qb_err *err) {
    qb_comm_req req;
    if (qb_comm_allreduce_start(c, buf, count, t, op, what, &req, err)) return -1;
    return qb_comm_wait(c, &req, err);
}

int qb_comm_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) {
    for (int64_t at = 0; at < bytes; at += QB_COMM_MAX_COUNT) {
        int64_t n = bytes - at < QB_COMM_MAX_COUNT ? bytes - at : QB_COMM_MAX_COUNT;
        if (c->be->broadcast(c, (char *)buf + at, n, root, what, err)) return -1;
    }
    return 0;
}

int qb_comm_gather(qb_comm *c, const void *send, int64_t bytes, void *recv, int64_t *counts, int root, const char *what, qb_err *err) {
    int64_t *all = calloc((size_t)c->size, sizeof *all), *displs = calloc((size_t)c->size, sizeof *displs);
    if (!all || !displs) return free(all), free(displs), qb_errorf(err, "%s: out of memory", what);
    all[c->rank] = bytes;
    int rc = qb_comm_allreduce(c, all, c->size, QB_COMM_I64, QB_COMM_SUM, what, err);
    int64_t total = 0;
    for (int r = 0; r < c->size; r++) displs[r] = total, total += all[r];
    if (!rc && total > QB_COMM_MAX_COUNT)
        rc = qb_errorf(err, "%s: gather of %lld bytes (at most %lld)", what, (long long)total, (long long)QB_COMM_MAX_COUNT);
    if (!rc) rc = c->be->gatherv(c, send, bytes, c->rank == root ? recv : NULL, all, displs, root, what, err);
    if (!rc && counts && c->rank == root) memcpy(counts, all, (size_t)c->size * sizeof *counts);
    free(all);
    free(displs);
    return rc;
}

int qb_comm_agree(qb_comm *c, bool failed, const char *what, qb_err *err) {
    if (c->size == 1) return failed ? -1 : 0;
    int64_t *flags = calloc((size_t)c->size, sizeof *flags);
    if (!flags) return qb_errorf(err, "%s: out of memory", what);
    flags[c->rank] = failed;
    int rc = qb_comm_allreduce(c, flags, c->size, QB_COMM_I64, QB_COMM_SUM, what, err);
    if (!rc && !failed) {
        char list[256] = "";
        size_t len = 0;
        int n = 0;
        for (int r = 0; r < c->size; r++) {
            if (!flags[r]) continue;
            if (n++ < 16 && len < sizeof list - 16) len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", r);
        }
        if (n) rc = qb_errorf(err, "%s: failed on rank%s %s%s (see that rank's error)", what, n > 1 ? "s" : "", list, n > 16 ? ", ..." : "");
    }
    free(flags);
    return rc || failed ? -1 : 0;
}

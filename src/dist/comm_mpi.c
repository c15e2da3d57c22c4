/* comm_mpi.c: the MPI backend of comm.h (host buffers): blocking collectives on a private duplicate of
 * MPI_COMM_WORLD whose errors return to us (MPI_ERRORS_RETURN), so a failed peer becomes a message, and a watchdog
 * (watchdog.h) that prints which collective outlived the deadline and ends the process (exit status 3) when a rank
 * died or hangs; the launcher then ends the other ranks. */
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/comm_backend.h"
#include "dist/watchdog.h"

typedef struct mpi_state {
    MPI_Comm comm;
    qb_watchdog dog;
} mpi_state;

static int mpi_fail(qb_comm *c, int code, const char *what, qb_err *err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return qb_errorf(err, "%s: MPI error: %s (a rank may have died)", what, text);
}

static MPI_Datatype mpi_type(qb_comm_type t) { return t == QB_COMM_F32 ? MPI_FLOAT : t == QB_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T; }
static MPI_Op mpi_op(qb_comm_op op) { return op == QB_COMM_SUM ? MPI_SUM : op == QB_COMM_MAX ? MPI_MAX : MPI_MIN; }

static void watch_begin(qb_comm *c, const char *what) { qb_watchdog_begin(&((mpi_state *)c->impl)->dog, what); }
static void watch_end(qb_comm *c) { qb_watchdog_end(&((mpi_state *)c->impl)->dog); }

/* Open MPI has no asynchronous progress on the CPU, so a started all-reduce runs at once (blocking, the tuned
 * algorithms) and waiting is free; buckets go one after another. */
static int mpi_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err) {
    mpi_state *s = c->impl;
    watch_begin(c, req->what);
    int code = MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(t), mpi_op(op), s->comm);
    watch_end(c);
    return code != MPI_SUCCESS ? mpi_fail(c, code, req->what, err) : 0;
}

static int mpi_wait(qb_comm *c, qb_comm_req *req, qb_err *err) { return 0; }

static int mpi_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) {
    mpi_state *s = c->impl;
    watch_begin(c, what);
    int code = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, s->comm);
    watch_end(c);
    return code != MPI_SUCCESS ? mpi_fail(c, code, what, err) : 0;
}

static int mpi_gatherv(qb_comm *c, const void *send, int64_t bytes, void *recv, const int64_t *counts, const int64_t *displs, int root,
                       const char *what, qb_err *err) {
    mpi_state *s = c->impl;
    int *ic = NULL, *id = NULL;
    if (c->rank == root) {
        ic = malloc((size_t)c->size * sizeof *ic);
        id = malloc((size_t)c->size * sizeof *id);
        if (!ic || !id) return free(ic), free(id), qb_errorf(err, "%s: out of memory", what);
        for (int r = 0; r < c->size; r++) ic[r] = (int)counts[r], id[r] = (int)displs[r];
    }
    watch_begin(c, what);
    int code = MPI_Gatherv(send, (int)bytes, MPI_BYTE, recv, ic, id, MPI_BYTE, root, s->comm);
    watch_end(c);
    free(ic);
    free(id);
    return code != MPI_SUCCESS ? mpi_fail(c, code, what, err) : 0;
}

static _Noreturn void mpi_abort(qb_comm *c, int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

static void mpi_close(qb_comm *c) {
    mpi_state *s = c->impl;
    if (!s) return;
    qb_watchdog_stop(&s->dog);
    MPI_Comm_free(&s->comm);
    free(s);
    c->impl = NULL;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

static const qb_comm_backend mpi_backend = {.name = "mpi", .allreduce_start = mpi_allreduce_start, .wait = mpi_wait,
                                            .broadcast = mpi_broadcast, .gatherv = mpi_gatherv, .abort = mpi_abort, .close = mpi_close};

int qb_comm_mpi_open(qb_comm *c, qb_err *err) {
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return qb_errorf(err, "MPI_Init failed (started by %s)", c->launcher);
    mpi_state *s = calloc(1, sizeof *s);
    if (!s) return qb_errorf(err, "MPI: out of memory");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int code = MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
    if (code != MPI_SUCCESS) return free(s), mpi_fail(c, code, "MPI_Comm_dup", err);
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->comm, &c->rank);
    MPI_Comm_size(s->comm, &c->size);
    MPI_Comm local;
    code = MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local);
    if (code != MPI_SUCCESS) return MPI_Comm_free(&s->comm), free(s), mpi_fail(c, code, "MPI_Comm_split_type", err);
    MPI_Comm_rank(local, &c->local_rank);
    MPI_Comm_size(local, &c->local_size);
    MPI_Comm_free(&local);
    c->be = &mpi_backend;
    c->impl = s;
    if (qb_watchdog_start(&s->dog, c, err)) {
        c->impl = NULL;
        MPI_Comm_free(&s->comm);
        free(s);
        return qb_err_context(err, "MPI");
    }
    return 0;
}

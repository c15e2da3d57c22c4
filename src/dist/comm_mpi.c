/* comm_mpi.c: the MPI backend of comm.h (host buffers). Every collective is non-blocking and waited for with a
 * deadline (MPI_Test polling, yielding the core while it waits), on a private duplicate of MPI_COMM_WORLD whose
 * errors return to us (MPI_ERRORS_RETURN) so that a failed peer becomes a message, not a silent hang. */
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/comm_backend.h"

typedef struct mpi_state {
    MPI_Comm comm;
} mpi_state;

static int mpi_fail(qb_comm *c, int code, const char *what, qb_err *err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return qb_errorf(err, "%s: MPI error: %s (a rank may have died)", what, text);
}

static MPI_Datatype mpi_type(qb_comm_type t) { return t == QB_COMM_F32 ? MPI_FLOAT : t == QB_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T; }
static MPI_Op mpi_op(qb_comm_op op) { return op == QB_COMM_SUM ? MPI_SUM : op == QB_COMM_MAX ? MPI_MAX : MPI_MIN; }

/* Waits for r until the deadline: spins briefly, then sleeps in growing steps (at most 1 ms) between tests. */
static int wait_request(qb_comm *c, MPI_Request *r, const char *what, qb_err *err) {
    double start = qb_comm_now(), deadline = start + c->timeout_s;
    long nap_ns = 0;
    for (int polls = 0;; polls++) {
        int done = 0, code = MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (code != MPI_SUCCESS) return mpi_fail(c, code, what, err);
        if (done) return 0;
        if (polls < 64) {
            sched_yield();
            continue;
        }
        if (qb_comm_now() > deadline)
            return qb_errorf(err, "%s did not complete within %.0f s: another rank died or hangs (QB_COMM_TIMEOUT sets the limit)", what,
                             c->timeout_s);
        nap_ns = nap_ns < 1000000 ? nap_ns + 10000 : 1000000;
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
    }
}

static int mpi_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err) {
    mpi_state *s = c->impl;
    MPI_Request *r = malloc(sizeof *r);
    if (!r) return qb_errorf(err, "%s: out of memory", req->what);
    int code = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(t), mpi_op(op), s->comm, r);
    if (code != MPI_SUCCESS) return free(r), mpi_fail(c, code, req->what, err);
    req->impl = r;
    return 0;
}

static int mpi_wait(qb_comm *c, qb_comm_req *req, qb_err *err) {
    MPI_Request *r = req->impl;
    if (!r) return 0;
    int rc = wait_request(c, r, req->what, err);
    free(r);
    req->impl = NULL;
    return rc;
}

static int mpi_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) {
    mpi_state *s = c->impl;
    MPI_Request r;
    int code = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, s->comm, &r);
    if (code != MPI_SUCCESS) return mpi_fail(c, code, what, err);
    return wait_request(c, &r, what, err);
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
    MPI_Request r;
    int code = MPI_Igatherv(send, (int)bytes, MPI_BYTE, recv, ic, id, MPI_BYTE, root, s->comm, &r);
    int rc = code != MPI_SUCCESS ? mpi_fail(c, code, what, err) : wait_request(c, &r, what, err);
    free(ic);
    free(id);
    return rc;
}

static _Noreturn void mpi_abort(qb_comm *c, int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

static void mpi_close(qb_comm *c) {
    mpi_state *s = c->impl;
    if (!s) return;
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
    return 0;
}

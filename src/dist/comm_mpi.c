/* comm_mpi.c: the MPI backend of comm.h (host buffers): blocking collectives on a private duplicate of
 * MPI_COMM_WORLD whose errors return to us (MPI_ERRORS_RETURN), so a failed peer becomes a message, and a watchdog
 * thread that prints which collective outlived the deadline and ends the process (exit status 3) when a rank died or
 * hangs; the launcher then ends the other ranks. A collective costs two uncontended mutex locks. */
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/comm_backend.h"

typedef struct watchdog watchdog;
static void *watchdog_main(void *arg);

typedef struct mpi_state {
    MPI_Comm comm;
    struct watchdog {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        double since;          /* its start on the monotonic clock (0: none) */
        char what[128];
        bool stop;
        qb_comm *c;
    } dog;
} mpi_state;

static int mpi_fail(qb_comm *c, int code, const char *what, qb_err *err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return qb_errorf(err, "%s: MPI error: %s (a rank may have died)", what, text);
}

static MPI_Datatype mpi_type(qb_comm_type t) { return t == QB_COMM_F32 ? MPI_FLOAT : t == QB_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T; }
static MPI_Op mpi_op(qb_comm_op op) { return op == QB_COMM_SUM ? MPI_SUM : op == QB_COMM_MAX ? MPI_MAX : MPI_MIN; }

/* The watchdog: wakes every WATCH_PERIOD_S (or at close) and ends the process when the collective in progress is older
 * than the deadline, so it fires within [timeout, timeout + period]; collectives themselves never wake it. */
#define WATCH_PERIOD_S 0.5

static void *watchdog_main(void *arg) {
    watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double wake = qb_comm_now() + WATCH_PERIOD_S;
        struct timespec ts = {.tv_sec = (time_t)wake, .tv_nsec = (long)((wake - (double)(time_t)wake) * 1e9)};
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (!w->stop && w->since != 0.0 && qb_comm_now() - w->since >= w->c->timeout_s) {
            fprintf(stderr, "qdqbert: rank %d/%d: %s did not complete within %.0f s: another rank died or hangs (QB_COMM_TIMEOUT sets the limit)\n",
                    w->c->rank, w->c->size, w->what, w->c->timeout_s);
            fflush(stderr);
            _exit(3);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watch_begin(qb_comm *c, const char *what) {
    watchdog *w = &((mpi_state *)c->impl)->dog;
    pthread_mutex_lock(&w->mu);
    w->since = qb_comm_now();
    snprintf(w->what, sizeof w->what, "%s", what);
    pthread_mutex_unlock(&w->mu);
}

static void watch_end(qb_comm *c) {
    watchdog *w = &((mpi_state *)c->impl)->dog;
    pthread_mutex_lock(&w->mu);
    w->since = 0.0;
    pthread_mutex_unlock(&w->mu);
}

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
    pthread_mutex_lock(&s->dog.mu);
    s->dog.stop = true;
    pthread_cond_signal(&s->dog.cv);
    pthread_mutex_unlock(&s->dog.mu);
    pthread_join(s->dog.thread, NULL);
    pthread_cond_destroy(&s->dog.cv);
    pthread_mutex_destroy(&s->dog.mu);
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
    s->dog.c = c;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&s->dog.mu, NULL) || pthread_cond_init(&s->dog.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (bad || pthread_create(&s->dog.thread, NULL, watchdog_main, &s->dog)) {
        c->impl = NULL;
        MPI_Comm_free(&s->comm);
        free(s);
        return qb_errorf(err, "MPI: cannot start the collective watchdog thread");
    }
    return 0;
}

/* comm_nccl.c: the NCCL backend of comm.h, one process per GPU. Device buffers go through NCCL on a communication
 * stream ordered after the compute stream (c->stream) by an event, and the compute stream waits for the result by
 * another, so a started all-reduce overlaps whatever the compute stream does meanwhile. Host buffers (losses, flags,
 * calibration statistics) go through the backend that carried the ncclUniqueId (mpi or tcp), kept underneath. Waiting
 * polls the event and ncclCommGetAsyncError against the collective deadline; a lost peer or the deadline aborts the
 * communicator (ncclCommAbort) and becomes an error naming the collective. Calls that block (ncclCommInitRank; an
 * enqueue that waits for peers, as the emulator's do) are under the watchdog (watchdog.h). Under the CUDA emulator the NCCL calls are
 * test/cuda_emu/emu_nccl.cpp (MPI underneath). */
#include "dist/comm_backend.h"
#include "dist/watchdog.h"

#ifdef QB_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct nccl_state {
    qb_comm host;           /* the bootstrap backend, for host buffers */
    ncclComm_t comm;
    cudaStream_t stream;    /* communication stream */
    int device;
    cudaEvent_t *free_ev;   /* events not in use */
    int n_free, cap_free;
    bool aborted;
    qb_watchdog dog;        /* the deadline of calls that block (initialisation; enqueues that wait for peers) */
} nccl_state;

typedef struct nccl_req {
    cudaEvent_t done;       /* recorded on the communication stream after the collective */
} nccl_req;

static int cuda_fail(cudaError_t e, const char *what, const char *call, qb_err *err) {
    return qb_errorf(err, "%s: %s: %s (%s)", what, call, cudaGetErrorString(e), cudaGetErrorName(e));
}

static int nccl_fail(nccl_state *s, ncclResult_t r, const char *what, const char *call, qb_err *err) {
    const char *last = ncclGetLastError(s ? s->comm : NULL);
    return qb_errorf(err, "%s: %s: %s%s%s (NCCL_DEBUG=INFO says more)", what, call, ncclGetErrorString(r), last && last[0] ? ": " : "", last ? last : "");
}

static ncclDataType_t nccl_type(qb_comm_type t) { return t == QB_COMM_F32 ? ncclFloat32 : t == QB_COMM_F64 ? ncclFloat64 : ncclInt64; }
static ncclRedOp_t nccl_op(qb_comm_op op) { return op == QB_COMM_SUM ? ncclSum : op == QB_COMM_MAX ? ncclMax : ncclMin; }

/* Device memory (NCCL's) or host memory (the bootstrap backend's). */
static bool on_device(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static int take_event(nccl_state *s, cudaEvent_t *ev, const char *what, qb_err *err) {
    if (s->n_free) return *ev = s->free_ev[--s->n_free], 0;
    cudaError_t e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming);
    return e != cudaSuccess ? cuda_fail(e, what, "cudaEventCreate", err) : 0;
}

static void give_event(nccl_state *s, cudaEvent_t ev) {
    if (s->n_free == s->cap_free) {
        int cap = s->cap_free ? 2 * s->cap_free : 16;
        cudaEvent_t *p = realloc(s->free_ev, (size_t)cap * sizeof *p);
        if (!p) {
            cudaEventDestroy(ev);
            return;
        }
        s->free_ev = p, s->cap_free = cap;
    }
    s->free_ev[s->n_free++] = ev;
}

/* The communication stream waits for the work the compute stream has queued so far. */
static int after_compute(qb_comm *c, nccl_state *s, const char *what, qb_err *err) {
    cudaEvent_t ready;
    if (take_event(s, &ready, what, err)) return -1;
    cudaError_t e = cudaEventRecord(ready, (cudaStream_t)c->stream);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(s->stream, ready, 0);
    give_event(s, ready); /* reusable at once: a record captures the stream's state when it is made */
    return e != cudaSuccess ? cuda_fail(e, what, "cudaEventRecord/cudaStreamWaitEvent", err) : 0;
}

static int abort_comm(nccl_state *s) {
    if (!s->aborted) ncclCommAbort(s->comm);
    s->aborted = true;
    return -1;
}

/* Polls until done has happened: the compute stream waits for it; a peer's failure or the deadline aborts NCCL. */
static int finish(qb_comm *c, nccl_state *s, cudaEvent_t done, const char *what, qb_err *err) {
    double deadline = qb_comm_now() + c->timeout_s;
    cudaError_t e = cudaStreamWaitEvent((cudaStream_t)c->stream, done, 0);
    if (e != cudaSuccess) return cuda_fail(e, what, "cudaStreamWaitEvent", err);
    for (unsigned spin = 0;; spin++) {
        ncclResult_t async = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(s->comm, &async);
        if (r != ncclSuccess) return abort_comm(s), nccl_fail(s, r, what, "ncclCommGetAsyncError", err);
        if (async != ncclSuccess && async != ncclInProgress) {
            nccl_fail(s, async, what, "NCCL", err);
            return abort_comm(s);
        }
        e = cudaEventQuery(done);
        if (e == cudaSuccess) return 0;
        if (e != cudaErrorNotReady) return abort_comm(s), cuda_fail(e, what, "cudaEventQuery", err);
        if (qb_comm_now() > deadline) {
            abort_comm(s);
            return qb_errorf(err, "%s did not complete within %.0f s: another rank died or hangs (NCCL aborted; QB_COMM_TIMEOUT sets the limit)", what,
                             c->timeout_s);
        }
        if (spin > 64) usleep(spin > 4096 ? 1000 : 50);
    }
}

static int nccl_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err) {
    nccl_state *s = c->impl;
    req->impl = NULL;
    if (!on_device(buf)) return s->host.be->allreduce_start(&s->host, buf, count, t, op, req, err);
    if (s->aborted) return qb_errorf(err, "%s: NCCL was aborted after an earlier error", req->what);
    nccl_req *q = malloc(sizeof *q);
    if (!q) return qb_errorf(err, "%s: out of memory", req->what);
    if (after_compute(c, s, req->what, err) || take_event(s, &q->done, req->what, err)) return free(q), -1;
    qb_watchdog_begin(&s->dog, req->what);
    ncclResult_t r = ncclAllReduce(buf, buf, (size_t)count, nccl_type(t), nccl_op(op), s->comm, s->stream);
    qb_watchdog_end(&s->dog);
    if (r != ncclSuccess) return give_event(s, q->done), free(q), nccl_fail(s, r, req->what, "ncclAllReduce", err);
    cudaError_t e = cudaEventRecord(q->done, s->stream);
    if (e != cudaSuccess) return give_event(s, q->done), free(q), cuda_fail(e, req->what, "cudaEventRecord", err);
    req->impl = q;
    return 0;
}

static int nccl_wait(qb_comm *c, qb_comm_req *req, qb_err *err) {
    nccl_state *s = c->impl;
    nccl_req *q = req->impl;
    if (!q) return s->host.be->wait(&s->host, req, err);
    req->impl = NULL;
    int rc = finish(c, s, q->done, req->what, err);
    give_event(s, q->done);
    free(q);
    return rc;
}

static int nccl_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) {
    nccl_state *s = c->impl;
    if (!on_device(buf)) return s->host.be->broadcast(&s->host, buf, bytes, root, what, err);
    if (s->aborted) return qb_errorf(err, "%s: NCCL was aborted after an earlier error", what);
    cudaEvent_t done;
    if (after_compute(c, s, what, err) || take_event(s, &done, what, err)) return -1;
    qb_watchdog_begin(&s->dog, what);
    ncclResult_t r = ncclBroadcast(buf, buf, (size_t)bytes, ncclUint8, root, s->comm, s->stream);
    qb_watchdog_end(&s->dog);
    if (r != ncclSuccess) return give_event(s, done), nccl_fail(s, r, what, "ncclBroadcast", err);
    cudaError_t e = cudaEventRecord(done, s->stream);
    int rc = e != cudaSuccess ? cuda_fail(e, what, "cudaEventRecord", err) : finish(c, s, done, what, err);
    give_event(s, done);
    return rc;
}

/* Device buffers are staged through host memory (gathers carry evaluation logits, not the step's traffic). */
static int nccl_gatherv(qb_comm *c, const void *send, int64_t bytes, void *recv, const int64_t *counts, const int64_t *displs, int root,
                        const char *what, qb_err *err) {
    nccl_state *s = c->impl;
    bool dev_send = bytes && on_device(send), dev_recv = recv && on_device(recv);
    if (!dev_send && !dev_recv) return s->host.be->gatherv(&s->host, send, bytes, recv, counts, displs, root, what, err);
    int64_t total = 0;
    if (recv)
        for (int r = 0; r < c->size; r++) total = displs[r] + counts[r] > total ? displs[r] + counts[r] : total;
    void *hs = dev_send ? malloc((size_t)bytes) : (void *)send, *hr = dev_recv ? malloc((size_t)total + 1) : recv;
    int rc = (dev_send && !hs) || (dev_recv && !hr) ? qb_errorf(err, "%s: out of memory", what) : 0;
    cudaError_t e = cudaSuccess;
    if (!rc && dev_send && (e = cudaStreamSynchronize((cudaStream_t)c->stream)) == cudaSuccess) e = cudaMemcpy(hs, send, (size_t)bytes, cudaMemcpyDeviceToHost);
    if (!rc && e != cudaSuccess) rc = cuda_fail(e, what, "cudaMemcpy", err);
    if (!rc) rc = s->host.be->gatherv(&s->host, hs, bytes, hr, counts, displs, root, what, err);
    if (!rc && dev_recv && (e = cudaMemcpy(recv, hr, (size_t)total, cudaMemcpyHostToDevice)) != cudaSuccess) rc = cuda_fail(e, what, "cudaMemcpy", err);
    if (dev_send) free(hs);
    if (dev_recv) free(hr);
    return rc;
}

static _Noreturn void nccl_abort(qb_comm *c, int code) {
    nccl_state *s = c->impl;
    abort_comm(s);
    s->host.be->abort(&s->host, code);
    exit(code);
}

static void nccl_close(qb_comm *c) {
    nccl_state *s = c->impl;
    if (!s) return;
    if (!s->aborted) {
        cudaStreamSynchronize(s->stream);
        ncclCommDestroy(s->comm);
    }
    qb_watchdog_stop(&s->dog);
    cudaStreamDestroy(s->stream);
    for (int i = 0; i < s->n_free; i++) cudaEventDestroy(s->free_ev[i]);
    free(s->free_ev);
    s->host.be->close(&s->host);
    free(s);
    c->impl = NULL;
}

static const qb_comm_backend nccl_backend = {.name = "nccl", .device_buffers = true, .allreduce_start = nccl_allreduce_start, .wait = nccl_wait,
                                             .broadcast = nccl_broadcast, .gatherv = nccl_gatherv, .abort = nccl_abort, .close = nccl_close};

int qb_comm_nccl_open(qb_comm *c, int ordinal, qb_err *err) {
    if (c->be == &nccl_backend) return 0;
    nccl_state *s = calloc(1, sizeof *s);
    if (!s) return qb_errorf(err, "nccl: out of memory");
    s->host = *c;
    s->device = ordinal;
    cudaError_t e = cudaSetDevice(ordinal);
    if (e != cudaSuccess) return free(s), cuda_fail(e, "nccl", "cudaSetDevice", err);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r = c->rank == 0 ? ncclGetUniqueId(&id) : ncclSuccess;
    /* a failure on rank 0 still takes part in the broadcast (a zero id), so the others fail in ncclCommInitRank */
    int rc = qb_comm_broadcast(c, &id, sizeof id, 0, "ncclUniqueId broadcast", err);
    if (!rc && r != ncclSuccess) rc = nccl_fail(NULL, r, "nccl", "ncclGetUniqueId", err);
    if (!rc) rc = qb_watchdog_start(&s->dog, c, err);
    if (rc) return free(s), -1;
    qb_watchdog_begin(&s->dog, "ncclCommInitRank");
    r = ncclCommInitRank(&s->comm, c->size, id, c->rank);
    qb_watchdog_end(&s->dog);
    if (r != ncclSuccess) {
        qb_watchdog_stop(&s->dog);
        free(s);
        return qb_errorf(err, "nccl: ncclCommInitRank (rank %d of %d, cuda:%d): %s: %s (NCCL_DEBUG=INFO says more)", c->rank, c->size, ordinal,
                         ncclGetErrorString(r), ncclGetLastError(NULL));
    }
    if ((e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        ncclCommDestroy(s->comm);
        qb_watchdog_stop(&s->dog);
        return free(s), cuda_fail(e, "nccl", "cudaStreamCreate", err);
    }
    c->be = &nccl_backend;
    c->impl = s;
    return 0;
}

#else
int qb_comm_nccl_open(qb_comm *c, int ordinal, qb_err *err) { return qb_errorf(err, "nccl: this build has no NCCL"); }
#endif

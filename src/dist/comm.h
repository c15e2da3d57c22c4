/* comm.h: a communicator between the processes of one data-parallel run: rank, world size, local rank, and the
 * collectives the trainer needs (all-reduce in place, broadcast, gather to a root, a barrier that carries a status).
 * Backends sit behind one table: "self" (one process, no runtime), "mpi" (Open MPI, CPU buffers), and the place for
 * "tcp" (torchrun / srun without MPI: a rendezvous at MASTER_ADDR, host buffers) and "nccl" (device buffers between
 * GPUs, the unique id carried by the mpi or tcp backend, qb_comm_use_gpu). qb_comm_open picks MPI only when a launcher
 * started the process (mpirun/mpiexec, srun, or any PMI/PMIx launcher), so a plain run never initialises MPI.
 * Every collective has a deadline (timeout_s): when a rank died or hangs, a watchdog prints on each waiting rank which
 * collective did not complete and ends it (exit status 3) instead of waiting forever; the launcher then ends the rest.
 * qb_comm_abort ends every rank of the job (after an error of this rank). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"

typedef enum qb_comm_type { QB_COMM_F32, QB_COMM_F64, QB_COMM_I64 } qb_comm_type;
typedef enum qb_comm_op { QB_COMM_SUM, QB_COMM_MAX, QB_COMM_MIN } qb_comm_op;

typedef struct qb_comm qb_comm;

/* An all-reduce in flight (qb_comm_allreduce_start); finished by qb_comm_wait. */
typedef struct qb_comm_req {
    void *impl;          /* the backend's request */
    const char *what;    /* for the timeout message */
} qb_comm_req;

/* One backend: collectives over buffers in host memory (device_buffers false) or in the device's memory. */
typedef struct qb_comm_backend {
    const char *name;
    bool device_buffers;
    int (*allreduce_start)(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err);
    int (*wait)(qb_comm *c, qb_comm_req *req, qb_err *err);
    int (*broadcast)(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err);
    /* recv[rank] gets counts[rank] bytes from each rank at displs[rank] (root only; others pass NULL recv) */
    int (*gatherv)(qb_comm *c, const void *send, int64_t bytes, void *recv, const int64_t *counts, const int64_t *displs, int root,
                   const char *what, qb_err *err);
    void (*abort)(qb_comm *c, int code);  /* does not return */
    void (*close)(qb_comm *c);
} qb_comm_backend;

struct qb_comm {
    const qb_comm_backend *be;
    int rank, size;              /* in the world */
    int local_rank, local_size;  /* on this host (the GPU a rank drives) */
    double timeout_s;            /* deadline of each collective (QB_COMM_TIMEOUT, default 45 s) */
    char launcher[16];           /* "none", "mpirun", "srun", "pmi", "torchrun", "env" */
    void *stream;                /* nccl: the compute stream (cudaStream_t) that writes and reads device buffers */
    void *impl;
};

/* The communicator this process was started with: MPI when a launcher's environment is present (and the build has
 * MPI), TCP for torchrun's variables (or QB_COMM_BOOTSTRAP=tcp), else the one-process "self" communicator. A launcher
 * seen without MPI support is an error. */
int qb_comm_open(qb_comm *c, qb_err *err);
/* The CUDA device of this rank: requested (cuda:N) as given, or (-1, plain "cuda") on several ranks the local rank's
 * (ordinal 0 where the launcher left each rank one visible GPU); an error when the host has fewer GPUs than ranks. */
int qb_comm_gpu_ordinal(const qb_comm *c, int requested, int visible, int *ordinal, qb_err *err);
/* After the device is chosen: on several ranks, the nccl backend on CUDA device ordinal when the build has NCCL (device
 * buffers go through NCCL, host buffers through the launcher's backend); QB_COMM_BACKEND=mpi keeps the host backend
 * (GPU buffers staged through host memory), =nccl makes a missing NCCL an error. */
int qb_comm_use_gpu(qb_comm *c, int ordinal, qb_err *err);
/* A one-process communicator (no runtime). */
void qb_comm_open_self(qb_comm *c);
/* Finalises the backend (MPI_Finalize); c becomes a self communicator. */
void qb_comm_close(qb_comm *c);
/* Prints nothing and ends every rank of the job with exit status code (MPI_Abort); a self communicator exits. */
_Noreturn void qb_comm_abort(qb_comm *c, int code);

/* Starts an in-place all-reduce of count elements of buf (which must stay untouched until qb_comm_wait). */
int qb_comm_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, const char *what, qb_comm_req *req,
                            qb_err *err);
/* Waits for an all-reduce; an error naming `what` when MPI fails (past the deadline the watchdog ends the process). */
int qb_comm_wait(qb_comm *c, qb_comm_req *req, qb_err *err);
/* In-place all-reduce (start + wait). */
int qb_comm_allreduce(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, const char *what, qb_err *err);
/* buf (bytes) from root to every rank. */
int qb_comm_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err);
/* Concatenates every rank's send (bytes each, any size) on root into recv, rank order; counts[size] gets each rank's
 * byte count on root (may be NULL). recv must hold the total (root only; ignored elsewhere). */
int qb_comm_gather(qb_comm *c, const void *send, int64_t bytes, void *recv, int64_t *counts, int root, const char *what, qb_err *err);
/* A barrier that agrees on success: returns 0 when every rank passed failed = false; else fills err (unless this rank's
 * own error is already there) with which ranks failed at `what`, and returns -1 on every rank. */
int qb_comm_agree(qb_comm *c, bool failed, const char *what, qb_err *err);

/* Element size of a type in bytes. */
int qb_comm_type_size(qb_comm_type t);
/* Seconds of the monotonic clock (deadlines, the bench). */
double qb_comm_now(void);

/* watchdog.h: the deadline of the collectives a backend blocks in (MPI calls, NCCL enqueues under the emulator, NCCL
 * initialisation): a thread that wakes every half second and, when the collective in progress is older than the
 * communicator's timeout_s, prints which one on this rank and ends the process (exit status 3); the launcher then ends
 * the others. A collective costs two uncontended mutex locks; the thread never wakes the collectives. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include "dist/comm.h"

typedef struct qb_watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double since;          /* start of the collective in progress on the monotonic clock (0: none) */
    char what[128];
    bool stop, running;
    const qb_comm *c;      /* rank, size and timeout_s, read when it fires */
} qb_watchdog;

/* Starts the thread for communicator c (which must stay at its address); an error when it cannot. */
int qb_watchdog_start(qb_watchdog *w, const qb_comm *c, qb_err *err);
/* A collective named what begins / ends. */
void qb_watchdog_begin(qb_watchdog *w, const char *what);
void qb_watchdog_end(qb_watchdog *w);
/* Stops and joins the thread (nothing when it was not started). */
void qb_watchdog_stop(qb_watchdog *w);

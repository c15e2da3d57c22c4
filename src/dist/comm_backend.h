/* comm_backend.h: what the backends of comm.c share (not for callers of comm.h). */
#pragma once
#include "dist/comm.h"

/* The largest element or byte count of one backend call (MPI counts are int). */
#define QB_COMM_MAX_COUNT ((int64_t)1 << 30)

/* Initialises MPI (once) and fills c from MPI_COMM_WORLD: rank, size, local rank (shared-memory split). */
int qb_comm_mpi_open(qb_comm *c, qb_err *err);

/* comm_backend.h: what the backends of comm.c share (not for callers of comm.h). */
#pragma once
#include "dist/comm.h"

/* The largest element or byte count of one backend call (MPI counts are int). */
#define QB_COMM_MAX_COUNT ((int64_t)1 << 30)

/* Initialises MPI (once) and fills c from MPI_COMM_WORLD: rank, size, local rank (shared-memory split). */
int qb_comm_mpi_open(qb_comm *c, qb_err *err);
/* Rank, size, local rank from torchrun's (or srun's) variables and the TCP rendezvous at MASTER_ADDR:MASTER_PORT;
 * c becomes a tcp communicator. */
int qb_comm_tcp_open(qb_comm *c, qb_err *err);
/* Switches c (an mpi or tcp communicator) to the nccl backend on CUDA device ordinal: the ncclUniqueId from rank 0
 * over c, ncclCommInitRank, a communication stream; host buffers keep going through the previous backend. */
int qb_comm_nccl_open(qb_comm *c, int ordinal, qb_err *err);

/* bench_allreduce.c: all-reduce bandwidth over the ranks of mpirun, as nccl-tests' all_reduce_perf prints it:
 * size, count, type, op, time, algbw = size / time, busbw = algbw x 2(n-1)/n, #wrong; for our communicator
 * (qb_comm_allreduce: non-blocking MPI with a deadline, and the trainer's bucketed gradient path) and for a plain
 * blocking MPI_Allreduce measured in the same run (the peer). Each figure is the median of 5 repetitions of the
 * mean over iters calls.
 *   mpirun -np 2 build/bench/bench_allreduce [MIN_BYTES [MAX_BYTES]]   (default 8 B to 64 MiB, x4 steps) */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "dist/comm.h"

enum { REPS = 5 };

typedef int (*reduce_fn)(qb_comm *c, float *buf, int64_t n, qb_err *err);

static int ours(qb_comm *c, float *buf, int64_t n, qb_err *err) {
    return qb_comm_allreduce(c, buf, n, QB_COMM_F32, QB_COMM_SUM, "bench all-reduce", err);
}

/* The gradient path: buckets of 4 Mi floats, two in flight. */
static int bucketed(qb_comm *c, float *buf, int64_t n, qb_err *err) {
    const int64_t bucket = (int64_t)1 << 22;
    qb_comm_req req[2];
    bool busy[2] = {false, false};
    int i = 0;
    for (int64_t off = 0; off < n; off += bucket, i++) {
        int s = i & 1;
        if (busy[s] && qb_comm_wait(c, &req[s], err)) return -1;
        int64_t l = n - off < bucket ? n - off : bucket;
        if (qb_comm_allreduce_start(c, buf + off, l, QB_COMM_F32, QB_COMM_SUM, "bench bucket", &req[s], err)) return -1;
        busy[s] = true;
    }
    for (int s = 0; s < 2; s++)
        if (busy[s] && qb_comm_wait(c, &req[s], err)) return -1;
    return 0;
}

static int plain_mpi(qb_comm *c, float *buf, int64_t n, qb_err *err) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : qb_errorf(err, "MPI_Allreduce");
}

/* Seconds per call (median over REPS of the mean of iters calls) and the wrong elements after one checked call. */
static double measure(qb_comm *c, reduce_fn f, float *buf, int64_t n, int iters, int64_t *wrong, qb_err *err) {
    for (int64_t k = 0; k < n; k++) buf[k] = (float)((c->rank + k) % 8);
    if (f(c, buf, n, err)) return NAN;
    *wrong = 0;
    for (int64_t k = 0; k < n; k++) {
        float want = 0.0f;
        for (int r = 0; r < c->size; r++) want += (float)((r + k) % 8);
        *wrong += buf[k] != want;
    }
    double t[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = bench_now();
        for (int it = 0; it < iters; it++)
            if (f(c, buf, n, err)) return NAN;
        double dt = (bench_now() - t0) / iters;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* the slowest rank's time */
        t[rep] = dt;
    }
    return bench_median(t, REPS);
}

int main(int argc, char **argv) {
    qb_err err = {0};
    qb_comm c;
    if (qb_comm_open(&c, &err)) qb_die("bench_allreduce", &err);
    if (c.size < 2 && c.rank == 0) printf("# one rank (start with mpirun -np N for a real measurement)\n");
    if (c.size < 2) return 0;
    int64_t lo = argc > 1 ? atoll(argv[1]) : 8, hi = argc > 2 ? atoll(argv[2]) : (int64_t)64 << 20;
    float *buf = malloc((size_t)hi + 64);
    if (!buf) return 1;
    double bus = 2.0 * (c.size - 1) / c.size;
    static const char *const names[] = {"qb_comm", "bucketed", "MPI_Allreduce"};
    reduce_fn fns[] = {ours, bucketed, plain_mpi};
    if (c.rank == 0) {
        printf("# all-reduce, %d ranks (%s), float sum, in place; times in us, bandwidths in GB/s\n", c.size, c.launcher);
        printf("# %12s %12s %6s %6s  %-14s %10s %8s %8s %6s  %s\n", "size", "count", "type", "redop", "impl", "time", "algbw", "busbw",
               "#wrong", "vs MPI_Allreduce");
    }
    for (int64_t bytes = lo; bytes <= hi; bytes *= 4) {
        int64_t n = bytes / 4 > 0 ? bytes / 4 : 1;
        int iters = bytes <= (1 << 16) ? 200 : bytes <= (1 << 22) ? 20 : 5;
        double t[3];
        int64_t wrong[3];
        for (int k = 0; k < 3; k++) t[k] = measure(&c, fns[k], buf, n, iters, &wrong[k], &err);
        if (err.failed) qb_die("bench_allreduce", &err);
        for (int k = 0; k < 3 && c.rank == 0; k++) {
            double algbw = (double)(n * 4) / t[k] / 1e9;
            printf("  %12lld %12lld %6s %6s  %-14s %10.1f %8.3f %8.3f %6lld  %.2fx\n", (long long)(n * 4), (long long)n, "float", "sum",
                   names[k], t[k] * 1e6, algbw, algbw * bus, (long long)wrong[k], t[2] / t[k]);
        }
    }
    free(buf);
    qb_comm_close(&c);
    return 0;
}

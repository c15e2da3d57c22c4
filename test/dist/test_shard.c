/* test_shard.c: the ranks' shares of batches and evaluation features cover each row once, in the one-process order;
 * the one-process communicator's collectives are the identity; a launcher's variables without MPI support, or
 * torchrun's without their rendezvous or with bad values, are clear errors; the GPU of a rank. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "dist/comm.h"
#include "train/data_parallel.h"

int main(void) {
    qb_check c = {0};
    /* every (n, per-rank batch, world) small case: global batch k's rows, cut in rank order, are rows k*B*N... */
    bool batches_ok = true, ranges_ok = true;
    for (int64_t n = 1; n <= 23; n++)
        for (int per = 1; per <= 4; per++)
            for (int world = 1; world <= 4; world++) {
                int64_t steps = (n + (int64_t)per * world - 1) / ((int64_t)per * world), next = 0;
                for (int64_t k = 0; k < steps; k++) {
                    int total = 0;
                    for (int r = 0; r < world; r++) {
                        int64_t first;
                        int rows, global_rows;
                        qb_shard_batch(n, per, world, r, k, &first, &rows, &global_rows);
                        if (rows > 0 && first != next) batches_ok = false;
                        if (rows < 0 || rows > per) batches_ok = false;
                        next += rows;
                        total += rows;
                        if (global_rows != (n - k * per * world < per * world ? n - k * per * world : per * world)) batches_ok = false;
                    }
                    if (total != (n - k * per * world < per * world ? n - k * per * world : per * world)) batches_ok = false;
                }
                if (next != n) batches_ok = false;
                int64_t at = 0;
                for (int r = 0; r < world; r++) {
                    int64_t first, count;
                    qb_shard_range(n, world, r, &first, &count);
                    if (first != at || count < n / world || count > n / world + 1) ranges_ok = false;
                    at += count;
                }
                if (at != n) ranges_ok = false;
            }
    CHECK(&c, batches_ok, "batch shares: each row once, in order, at most the per-rank batch, short last batches included");
    CHECK(&c, ranges_ok, "evaluation shares: contiguous, balanced, covering");

    qb_comm self;
    qb_comm_open_self(&self);
    qb_err err = {0};
    float v[3] = {1, 2, 3};
    CHECK(&c, !qb_comm_allreduce(&self, v, 3, QB_COMM_F32, QB_COMM_SUM, "t", &err) && v[0] == 1 && v[2] == 3, "self all-reduce is the identity");
    char out[4] = "", in[4] = "abc";
    int64_t counts[1] = {0};
    CHECK(&c, !qb_comm_gather(&self, in, 4, out, counts, 0, "t", &err) && !strcmp(out, "abc") && counts[0] == 4, "self gather copies");
    CHECK(&c, qb_comm_agree(&self, false, "t", &err) == 0 && qb_comm_agree(&self, true, "t", &err) == -1, "self agree passes the status");

    /* torchrun's variables without MASTER_ADDR/MASTER_PORT are refused with the reason */
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    unsetenv("PMI_SIZE");
    unsetenv("SLURM_PROCID");
    setenv("WORLD_SIZE", "2", 1);
    qb_comm t;
    qb_err e2 = {0};
    CHECK(&c, qb_comm_open(&t, &e2) == -1 && strstr(e2.msg, "MASTER_ADDR") && strstr(e2.msg, "torchrun"), "torchrun without its rendezvous: %s", e2.msg);
    /* torchrun's variables that do not make sense: the variable named */
    setenv("RANK", "5", 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", "29999", 1);
    qb_err e5 = {0};
    CHECK(&c, qb_comm_open(&t, &e5) == -1 && strstr(e5.msg, "RANK 5 is not below WORLD_SIZE 2"), "RANK past WORLD_SIZE: %s", e5.msg);
    setenv("RANK", "one", 1);
    qb_err e6 = {0};
    CHECK(&c, qb_comm_open(&t, &e6) == -1 && strstr(e6.msg, "RANK: 'one'"), "RANK not a number: %s", e6.msg);
    setenv("QB_COMM_BOOTSTRAP", "pigeon", 1);
    qb_err e7 = {0};
    CHECK(&c, qb_comm_open(&t, &e7) == -1 && strstr(e7.msg, "QB_COMM_BOOTSTRAP: 'pigeon'"), "bad bootstrap: %s", e7.msg);
    unsetenv("QB_COMM_BOOTSTRAP");
    unsetenv("RANK");
    unsetenv("MASTER_ADDR");
    unsetenv("MASTER_PORT");
    unsetenv("WORLD_SIZE");

    /* the GPU of a rank: cuda:N as given, cuda = cuda:<local rank>, too few GPUs an error */
    qb_comm two = self;
    two.size = 4, two.rank = 3, two.local_rank = 1, two.local_size = 2;
    int ordinal = -7;
    qb_err e8 = {0};
    CHECK(&c, qb_comm_gpu_ordinal(&two, 3, 2, &ordinal, &e8) == 0 && ordinal == 3, "cuda:3 kept (%d)", ordinal);
    CHECK(&c, qb_comm_gpu_ordinal(&two, -1, 2, &ordinal, &e8) == 0 && ordinal == 1, "cuda on local rank 1: cuda:1 (%d)", ordinal);
    CHECK(&c, qb_comm_gpu_ordinal(&self, -1, 1, &ordinal, &e8) == 0 && ordinal == 0, "one process: cuda:0 (%d)", ordinal);
    unsetenv("CUDA_VISIBLE_DEVICES");
    CHECK(&c, qb_comm_gpu_ordinal(&two, -1, 1, &ordinal, &e8) == -1 && strstr(e8.msg, "local rank 1 has no GPU (1 visible"), "too few GPUs: %s",
          e8.msg);
    setenv("CUDA_VISIBLE_DEVICES", "3", 1);
    CHECK(&c, qb_comm_gpu_ordinal(&two, -1, 1, &ordinal, &err) == 0 && ordinal == 0, "one visible GPU per rank: its cuda:0 (%d)", ordinal);
    unsetenv("CUDA_VISIBLE_DEVICES");
    setenv("QB_COMM_BACKEND", "carrier", 1);
    qb_err e9 = {0};
    CHECK(&c, qb_comm_use_gpu(&two, 0, &e9) == -1 && strstr(e9.msg, "QB_COMM_BACKEND: 'carrier'"), "bad backend: %s", e9.msg);
    setenv("QB_COMM_BACKEND", "mpi", 1);
    CHECK(&c, qb_comm_use_gpu(&two, 0, &err) == 0 && two.be == self.be, "QB_COMM_BACKEND=mpi keeps the backend");
    unsetenv("QB_COMM_BACKEND");

    setenv("QB_COMM_TIMEOUT", "soon", 1);
    qb_err e3 = {0};
    CHECK(&c, qb_comm_open(&t, &e3) == -1 && strstr(e3.msg, "QB_COMM_TIMEOUT"), "bad timeout: %s", e3.msg);
    setenv("QB_COMM_TIMEOUT", "7.5", 1);
    qb_err e4 = {0};
    CHECK(&c, qb_comm_open(&t, &e4) == 0 && t.size == 1 && t.timeout_s == 7.5 && !strcmp(t.be->name, "self"),
          "no launcher: one process, self backend, timeout from QB_COMM_TIMEOUT (%s)", e4.msg);
    qb_comm_close(&t);
    return qb_check_finish(&c, "shard");
}

/* data_parallel.h: the pieces of data-parallel training and calibration over a communicator (dist/comm.h):
 * the rank's share of a global batch, the gradient all-reduce in buckets over the packed gradient block, and the
 * merge of calibrator statistics across ranks. With one rank every function is the identity. */
#pragma once
#include "dist/comm.h"
#include "model/bert.h"

/* Floats per all-reduce bucket of the gradient block (16 MiB, NCCL's and DDP's order of magnitude). */
#define QB_GRAD_BUCKET_FLOATS ((int64_t)1 << 22)

/* Rank `rank`'s rows of global batch k (the k-th slice of global_batch rows of an epoch's n-row permutation): the
 * global batch's rows [k*global_batch, ...) cut into per_rank rows per rank in rank order. first is the offset into
 * the permutation, rows this rank's count (0 when the last batch is short), global_rows the whole batch's. */
void qb_shard_batch(int64_t n, int per_rank, int world, int rank, int64_t k, int64_t *first, int *rows, int *global_rows);

/* Contiguous share [*first, *first + *count) of n items for rank (evaluation features). */
void qb_shard_range(int64_t n, int world, int rank, int64_t *first, int64_t *count);

typedef struct qb_grad_sync {
    float *stage[2];     /* host staging buckets (backends with host buffers) */
    int64_t bucket;      /* floats per bucket */
    bool no_overlap;     /* device buffers: start the buckets after the backward pass, not during it */
    /* the step in progress (device buffers): buckets started from the last down, each once backward is past the
     * first tape node that touches it (ready_at) */
    qb_comm *c;
    qb_ctx *ctx;
    float weight;
    int n_buckets, next;  /* next: the highest bucket not started yet */
    int *ready_at;        /* per bucket: the lowest tape index with an input in it (-1: none) */
    qb_comm_req *req;
    char what[64];
    qb_err err;           /* the hook's error */
    bool failed, armed;   /* armed: begin hooked the backward pass of this step */
    int64_t hooked_starts, starts;  /* buckets started during a backward pass / in all (the overlap, for tests) */
} qb_grad_sync;

/* Sums weight * gradient over the ranks into every rank's packed gradient block (ctx->params.block_grad), bucket by
 * bucket, two buckets in flight (staged through host memory for a host-buffer backend). weight is this rank's share
 * of the global batch (rows / global rows), so the result is the gradient of the global batch's mean loss. */
int qb_grad_sync_run(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err);
/* The same, overlapped with the backward pass on a device-buffer backend (NCCL): called after the forward pass and
 * before qb_backward, it hooks the backward pass (ctx->backward_hook) so that each bucket is scaled and its all-reduce
 * started as soon as its gradients are final, from the last bucket down (the same order on every rank, whatever
 * their tapes). qb_grad_sync_end starts what is left and waits for all. With a host-buffer backend, or no_overlap,
 * begin does nothing and end is qb_grad_sync_run. Results are the same bits either way. */
int qb_grad_sync_begin(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err);
int qb_grad_sync_end(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err);
/* Frees the staging buffers. */
void qb_grad_sync_free(qb_grad_sync *g);

/* Every histogram calibrator's range agreed across ranks: after a pass in which histogram quantizers collected
 * max|x| into their max calibrators, the max over the ranks fixes each histogram's range (set_range), and the max
 * calibrators are reset. Quantizers without data on every rank are left without a range. */
int qb_calib_agree_ranges(qb_comm *c, qb_bert_model *m, qb_err *err);
/* Merges every quantizer's calibrator across ranks: max calibrators by max, histograms (same range on every rank, from
 * qb_calib_agree_ranges) by summing their counts; each rank ends with the calibrator of the union of the data. */
int qb_calib_merge(qb_comm *c, qb_bert_model *m, qb_err *err);

/* data_parallel.c: see data_parallel.h. */
#include "train/data_parallel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/graph.h"
#ifdef QB_HAVE_CUDA
#include "autograd/cuda/kernels.h"
#endif

void qb_shard_batch(int64_t n, int per_rank, int world, int rank, int64_t k, int64_t *first, int *rows, int *global_rows) {
    int64_t global_batch = (int64_t)per_rank * world, start = k * global_batch;
    int64_t left = n - start < global_batch ? n - start : global_batch;
    if (left < 0) left = 0;
    int64_t mine = left - (int64_t)rank * per_rank;
    mine = mine < 0 ? 0 : mine > per_rank ? per_rank : mine;
    *first = start + (int64_t)rank * per_rank;
    *rows = (int)mine;
    *global_rows = (int)left;
}

void qb_shard_range(int64_t n, int world, int rank, int64_t *first, int64_t *count) {
    int64_t lo = n * rank / world, hi = n * (rank + 1) / world;
    *first = lo;
    *count = hi - lo;
}

/* Finishes the all-reduce of one staged bucket and puts the sum back into the gradient block. */
static int finish_bucket(qb_comm *c, qb_ctx *ctx, qb_comm_req *req, float *dst, const float *stage, int64_t len, qb_err *err) {
    if (qb_comm_wait(c, req, err)) return -1;
    if (qb_upload(ctx, dst, stage, (size_t)len * sizeof(float))) return qb_errorf(err, "gradient all-reduce: %s", ctx->err.msg);
    return 0;
}

static int staged_run(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err) {
    float *block = ctx->params.block_grad;
    int64_t n = ctx->params.block_numel;
    if (!block) return qb_errorf(err, "gradient all-reduce: the parameters are not packed");
    if (qb_zero_grad_flush(ctx)) return qb_errorf(err, "gradient all-reduce: %s", ctx->err.msg);
    if (g->bucket <= 0) g->bucket = QB_GRAD_BUCKET_FLOATS;
    int64_t cap = n < g->bucket ? n : g->bucket;
    for (int s = 0; s < 2; s++)
        if (!g->stage[s] && !(g->stage[s] = malloc((size_t)cap * sizeof(float)))) return qb_errorf(err, "gradient all-reduce: out of memory");
    char what[64];
    snprintf(what, sizeof what, "gradient all-reduce (step %lld)", (long long)step);
    qb_comm_req req[2];
    int64_t at[2] = {0, 0}, len[2] = {0, 0};
    bool busy[2] = {false, false};
    int rc = 0, i = 0;
    for (int64_t off = 0; off < n && !rc; off += cap, i++) {
        int s = i & 1;
        if (busy[s]) {
            busy[s] = false;
            if ((rc = finish_bucket(c, ctx, &req[s], block + at[s], g->stage[s], len[s], err))) break;
        }
        int64_t l = n - off < cap ? n - off : cap;
        if (qb_download(ctx, g->stage[s], block + off, (size_t)l * sizeof(float))) {
            rc = qb_errorf(err, "gradient all-reduce: %s", ctx->err.msg);
            break;
        }
        if (weight != 1.0f)
            for (int64_t k = 0; k < l; k++) g->stage[s][k] *= weight;
        if ((rc = qb_comm_allreduce_start(c, g->stage[s], l, QB_COMM_F32, QB_COMM_SUM, what, &req[s], err))) break;
        at[s] = off;
        len[s] = l;
        busy[s] = true;
    }
    /* the older bucket first */
    for (int j = 0; j < 2; j++) {
        int s = (i + j) & 1;
        if (busy[s] && !rc) rc = finish_bucket(c, ctx, &req[s], block + at[s], g->stage[s], len[s], err);
    }
    return rc;
}


/* ---- device buffers (NCCL): buckets in place in the gradient block, started from the last down */
static int64_t bucket_cap(const qb_grad_sync *g, int64_t n) { return n < g->bucket ? n : g->bucket; }

static int start_bucket(qb_grad_sync *g, int b, qb_err *err) {
    float *block = g->ctx->params.block_grad;
    int64_t n = g->ctx->params.block_numel, cap = bucket_cap(g, n), off = (int64_t)b * cap, len = n - off < cap ? n - off : cap;
    /* gradients the backward pass did not reach are still marked zero: written before the bucket goes */
    if (qb_zero_grad_flush_span(g->ctx, off, off + len - 1) || (g->weight != 1.0f && qb_device_scale(g->ctx, block + off, g->weight, len)))
        return qb_errorf(err, "gradient all-reduce: %s", g->ctx->err.msg);
    g->starts++;
    return qb_comm_allreduce_start(g->c, block + off, len, QB_COMM_F32, QB_COMM_SUM, g->what, &g->req[b], err);
}

/* After tape node k's backward: every bucket from the next one down whose gradients are final (no node below k
 * touches it) is started. */
static int backward_hook(qb_ctx *ctx, int k, void *user) {
    qb_grad_sync *g = user;
    while (g->next >= 0 && (g->ready_at[g->next] < 0 || g->ready_at[g->next] >= k)) {
        if (start_bucket(g, g->next, &g->err)) {
            g->failed = true;
            return qb_errorf(&ctx->err, "%s", g->err.msg);
        }
        g->next--;
        g->hooked_starts++;
    }
    return 0;
}

/* The lowest tape index of a node with an input inside each bucket of the parameter block. */
static void find_ready_at(qb_grad_sync *g, qb_ctx *ctx) {
    int64_t cap = bucket_cap(g, ctx->params.block_numel), first, last;
    for (int b = 0; b < g->n_buckets; b++) g->ready_at[b] = -1;
    for (int k = ctx->n_tape - 1; k >= 0; k--) {
        const qb_node *node = ctx->tape[k];
        for (int j = 0; j < node->n_in; j++)
            if (qb_params_block_span(ctx, node->in[j], &first, &last))
                for (int64_t b = first / cap; b <= last / cap; b++) g->ready_at[b] = k;
    }
}

static int device_prepare(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err) {
    int64_t n = ctx->params.block_numel;
    if (!ctx->params.block_grad) return qb_errorf(err, "gradient all-reduce: the parameters are not packed");
#ifdef QB_HAVE_CUDA
    if (ctx->device != QB_CUDA) return qb_errorf(err, "gradient all-reduce: backend %s needs the gradients on a GPU", c->be->name);
    c->stream = qb_cuda_stream(ctx->dev);
#else
    return qb_errorf(err, "gradient all-reduce: backend %s needs a CUDA build", c->be->name);
#endif
    if (g->bucket <= 0) g->bucket = QB_GRAD_BUCKET_FLOATS;
    int64_t cap = bucket_cap(g, n), nb = n > 0 ? (n + cap - 1) / cap : 0;
    if (nb > g->n_buckets) {
        free(g->ready_at);
        free(g->req);
        g->ready_at = malloc((size_t)nb * sizeof *g->ready_at);
        g->req = malloc((size_t)nb * sizeof *g->req);
        if (!g->ready_at || !g->req) return g->n_buckets = 0, qb_errorf(err, "gradient all-reduce: out of memory");
    }
    g->n_buckets = (int)nb;
    g->next = (int)nb - 1;
    g->c = c, g->ctx = ctx, g->weight = weight, g->failed = false;
    qb_err_clear(&g->err);
    snprintf(g->what, sizeof g->what, "gradient all-reduce (step %lld)", (long long)step);
    return 0;
}

int qb_grad_sync_begin(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err) {
    if (!c || c->size == 1 || !c->be->device_buffers || g->no_overlap) return 0;
    if (device_prepare(g, c, ctx, weight, step, err)) return -1;
    find_ready_at(g, ctx);
    ctx->backward_hook = backward_hook;
    ctx->backward_user = g;
    g->armed = true;
    return 0;
}

int qb_grad_sync_end(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err) {
    if (!c || c->size == 1) return 0;
    if (!c->be->device_buffers) return staged_run(g, c, ctx, weight, step, err);
    bool armed = g->armed;
    g->armed = false;
    ctx->backward_hook = NULL;
    ctx->backward_user = NULL;
    if (!armed && device_prepare(g, c, ctx, weight, step, err)) return -1;
    if (g->failed) return qb_errorf(err, "%s", g->err.msg);
    int rc = 0;
    for (; g->next >= 0 && !rc; g->next--) rc = start_bucket(g, g->next, err);
    /* wait for every bucket started (the first ones first), even after an error */
    int lowest = g->next + (rc ? 2 : 1);
    for (int b = g->n_buckets - 1; b >= lowest; b--) {
        qb_err e2 = {0};
        if (qb_comm_wait(c, &g->req[b], rc ? &e2 : err)) rc = -1;
    }
    return rc;
}

int qb_grad_sync_run(qb_grad_sync *g, qb_comm *c, qb_ctx *ctx, float weight, int64_t step, qb_err *err) {
    if (!c || c->size == 1) return 0;
    if (!c->be->device_buffers) return staged_run(g, c, ctx, weight, step, err);
    g->armed = false;
    return qb_grad_sync_end(g, c, ctx, weight, step, err);
}

void qb_grad_sync_free(qb_grad_sync *g) {
    for (int s = 0; s < 2; s++) {
        free(g->stage[s]);
        g->stage[s] = NULL;
    }
    free(g->ready_at);
    free(g->req);
    g->ready_at = NULL;
    g->req = NULL;
    g->n_buckets = 0;
}

static bool is_histogram(const tensor_quantizer *q) { return q->desc.calib == CALIB_HISTOGRAM; }

int qb_calib_agree_ranges(qb_comm *c, qb_bert_model *m, qb_err *err) {
    float *v = malloc(((size_t)m->n_quant + 1) * sizeof *v);
    if (!v) return qb_errorf(err, "calibrate: out of memory");
    for (int i = 0; i < m->n_quant; i++) {
        const tensor_quantizer *q = &m->quant[i].tq;
        v[i] = -1.0f;
        for (int64_t k = 0; is_histogram(q) && q->max.amax && k < q->max.n; k++) v[i] = q->max.amax[k] > v[i] ? q->max.amax[k] : v[i];
    }
    int rc = c ? qb_comm_allreduce(c, v, m->n_quant, QB_COMM_F32, QB_COMM_MAX, "calibration range agreement", err) : 0;
    for (int i = 0; i < m->n_quant && !rc; i++) {
        tensor_quantizer *q = &m->quant[i].tq;
        if (!is_histogram(q)) continue;
        calib_max_reset(&q->max);
        if (v[i] > 0.0f) rc = calib_histogram_set_range(&q->hist, v[i], err);
        if (rc) qb_err_context(err, "calibrate: quantizer %s", q->name);
    }
    free(v);
    return rc;
}

/* Elements of quantizer q's calibrator: max values or histogram bins. */
static int64_t calib_len(const tensor_quantizer *q) { return is_histogram(q) ? q->hist.nbins : q->max.amax ? q->max.n : 0; }

int qb_calib_merge(qb_comm *c, qb_bert_model *m, qb_err *err) {
    if (!c || c->size == 1) return 0;
    int nq = m->n_quant;
    int64_t *shape = malloc(((size_t)2 * nq + 1) * sizeof *shape), n_max = 0, n_bins = 0;
    if (!shape) return qb_errorf(err, "calibrate: out of memory");
    for (int i = 0; i < nq; i++) shape[2 * i] = calib_len(&m->quant[i].tq), shape[2 * i + 1] = -calib_len(&m->quant[i].tq);
    int rc = qb_comm_allreduce(c, shape, 2 * nq, QB_COMM_I64, QB_COMM_MAX, "calibration merge (shapes)", err);
    for (int i = 0; i < nq && !rc; i++) {
        const tensor_quantizer *q = &m->quant[i].tq;
        if (shape[2 * i] != -shape[2 * i + 1])
            rc = qb_errorf(err, "calibrate: quantizer %s has %lld to %lld %s on different ranks (every rank needs data)", q->name,
                           (long long)-shape[2 * i + 1], (long long)shape[2 * i], is_histogram(q) ? "histogram bins" : "amax values");
        if (is_histogram(q)) n_bins += calib_len(q);
        else n_max += calib_len(q);
    }
    free(shape);
    if (rc) return rc;
    float *amax = malloc(((size_t)n_max + 1) * sizeof *amax);
    int64_t *counts = malloc(((size_t)n_bins + 1) * sizeof *counts);
    if (!amax || !counts) rc = qb_errorf(err, "calibrate: out of memory");
    for (int pass = 0; pass < 2 && !rc; pass++) {
        int64_t a = 0, b = 0;
        for (int i = 0; i < nq; i++) {
            tensor_quantizer *q = &m->quant[i].tq;
            int64_t len = calib_len(q);
            if (!len) continue;
            if (is_histogram(q)) {
                if (pass == 0) memcpy(counts + b, q->hist.counts, (size_t)len * sizeof *counts);
                else memcpy(q->hist.counts, counts + b, (size_t)len * sizeof *counts);
                b += len;
            } else {
                if (pass == 0) memcpy(amax + a, q->max.amax, (size_t)len * sizeof *amax);
                else memcpy(q->max.amax, amax + a, (size_t)len * sizeof *amax);
                a += len;
            }
        }
        if (pass == 0) {
            for (int64_t at = 0; !rc && at < n_max; at += QB_GRAD_BUCKET_FLOATS)
                rc = qb_comm_allreduce(c, amax + at, n_max - at < QB_GRAD_BUCKET_FLOATS ? n_max - at : QB_GRAD_BUCKET_FLOATS, QB_COMM_F32,
                                       QB_COMM_MAX, "calibration merge (max)", err);
            for (int64_t at = 0; !rc && at < n_bins; at += QB_GRAD_BUCKET_FLOATS)
                rc = qb_comm_allreduce(c, counts + at, n_bins - at < QB_GRAD_BUCKET_FLOATS ? n_bins - at : QB_GRAD_BUCKET_FLOATS,
                                       QB_COMM_I64, QB_COMM_SUM, "calibration merge (histogram counts)", err);
        }
    }
    free(amax);
    free(counts);
    return rc;
}

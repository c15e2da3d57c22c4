/* tensor.c: see tensor.h. */
#include "autograd/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "autograd/rng.h"

qb_ctx *qb_ctx_new(qb_device device, uint64_t seed, qb_err *err) {
    void *cuda = NULL;
    if (device == QB_CUDA) {
        char msg[512];
        cuda = qb_cuda_init(msg, sizeof msg);
        if (!cuda) {
            qb_errorf(err, "cuda: %s", msg);
            return NULL;
        }
    }
    qb_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        qb_errorf(err, "out of memory creating context");
        return NULL;
    }
    ctx->device = device;
    ctx->seed = seed;
    ctx->cuda = cuda;
    if (qb_arena_init(&ctx->meta, QB_CPU, 1 << 20) || qb_arena_init(&ctx->act, device, 0)) {
        qb_ctx_free(ctx);
        qb_errorf(err, "out of memory creating context arenas");
        return NULL;
    }
    return ctx;
}

static bool in_block(const qb_param_list *l, const float *block, const float *p) {
    return block && p >= block && p < block + l->block_numel;
}

/* Frees a parameter's own memory (not memory inside the packed blocks). */
static void free_param_memory(const qb_param_list *l, qb_tensor *p) {
    if (!in_block(l, l->block_data, p->data)) qb_device_free(p->device, p->data);
    if (p->grad && !in_block(l, l->block_grad, p->grad->data)) qb_device_free(p->device, p->grad->data);
}

void qb_ctx_free(qb_ctx *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ctx->params.n; i++) {
        qb_tensor *p = ctx->params.items[i];
        free_param_memory(&ctx->params, p);
        free(p->grad);
        free((char *)p->name);
        free(p);
    }
    qb_device_free(ctx->device, ctx->params.block_data);
    qb_device_free(ctx->device, ctx->params.block_grad);
    free(ctx->params.items);
    free(ctx->tape);
    qb_arena_free(&ctx->meta);
    qb_arena_free(&ctx->act);
    if (ctx->cuda) qb_cuda_shutdown(ctx->cuda);
    free(ctx);
}

int qb_ctx_step_reset(qb_ctx *ctx) {
    ctx->n_tape = 0;
    qb_err_clear(&ctx->err);
    if (qb_arena_reset(&ctx->meta) || qb_arena_reset(&ctx->act))
        return qb_errorf(&ctx->err, "out of memory growing the step arena");
    return 0;
}

void *qb_act_alloc(qb_ctx *ctx, size_t bytes) {
    void *p = qb_arena_alloc(&ctx->act, bytes);
    if (!p) qb_errorf(&ctx->err, "out of %s memory allocating %zu bytes", qb_device_name(ctx->device), bytes);
    return p;
}

void *qb_meta_alloc(qb_ctx *ctx, size_t bytes) {
    void *p = qb_arena_alloc(&ctx->meta, bytes);
    if (!p) qb_errorf(&ctx->err, "out of host memory allocating %zu bytes", bytes);
    return p;
}

int64_t qb_numel(const qb_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

void qb_set_contiguous_strides(qb_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

bool qb_is_contiguous(const qb_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

const char *qb_shape_str(const qb_tensor *t, char *buf, int n) {
    if (!t) {
        snprintf(buf, (size_t)n, "(null)");
        return buf;
    }
    int k = snprintf(buf, (size_t)n, "[");
    for (int d = 0; d < t->ndim && k < n; d++) k += snprintf(buf + k, (size_t)(n - k), d ? ", %ld" : "%ld", (long)t->shape[d]);
    if (k < n) snprintf(buf + k, (size_t)(n - k), "]");
    return buf;
}

static int check_shape(qb_ctx *ctx, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > QB_MAX_DIMS) return qb_errorf(&ctx->err, "tensor: %d dims (at most %d)", ndim, QB_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) return qb_errorf(&ctx->err, "tensor: negative size %ld in dim %d", (long)shape[d], d);
    return 0;
}

qb_tensor *qb_new(qb_ctx *ctx, int ndim, const int64_t *shape) {
    if (qb_ctx_failed(ctx) || check_shape(ctx, ndim, shape)) return NULL;
    qb_tensor *t = qb_meta_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    qb_set_contiguous_strides(t);
    t->device = ctx->device;
    t->data = qb_act_alloc(ctx, (size_t)qb_numel(t) * sizeof(float));
    return t->data ? t : NULL;
}

qb_tensor *qb_zeros(qb_ctx *ctx, int ndim, const int64_t *shape) {
    qb_tensor *t = qb_new(ctx, ndim, shape);
    if (t && qb_fill(ctx, t, 0.0f)) return NULL;
    return t;
}

qb_tensor *qb_from_host(qb_ctx *ctx, int ndim, const int64_t *shape, const float *host) {
    qb_tensor *t = qb_new(ctx, ndim, shape);
    if (t && qb_copy_from_host(ctx, t, host)) return NULL;
    return t;
}

static qb_tensor *persistent_tensor(qb_ctx *ctx, int ndim, const int64_t *shape) {
    qb_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    qb_set_contiguous_strides(t);
    t->device = ctx->device;
    t->data = qb_device_malloc(ctx->device, (size_t)qb_numel(t) * sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    return t;
}

qb_tensor *qb_param_new(qb_ctx *ctx, const char *name, int ndim, const int64_t *shape) {
    if (qb_ctx_failed(ctx) || check_shape(ctx, ndim, shape)) return NULL;
    if (ctx->params.n == ctx->params.cap) {
        int nc = ctx->params.cap ? 2 * ctx->params.cap : 64;
        qb_tensor **ni = realloc(ctx->params.items, (size_t)nc * sizeof *ni);
        if (!ni) {
            qb_errorf(&ctx->err, "out of memory adding parameter %s", name);
            return NULL;
        }
        ctx->params.items = ni;
        ctx->params.cap = nc;
    }
    qb_tensor *t = persistent_tensor(ctx, ndim, shape);
    qb_tensor *g = t ? persistent_tensor(ctx, ndim, shape) : NULL;
    char *nm = strdup(name ? name : "");
    if (!t || !g || !nm) {
        if (t) qb_device_free(ctx->device, t->data);
        if (g) qb_device_free(ctx->device, g->data);
        free(t);
        free(g);
        free(nm);
        qb_errorf(&ctx->err, "out of memory allocating parameter %s", name);
        return NULL;
    }
    t->grad = g;
    t->requires_grad = true;
    t->is_param = true;
    t->name = nm;
    ctx->params.items[ctx->params.n++] = t;
    if (qb_fill(ctx, t, 0.0f) || qb_fill(ctx, g, 0.0f)) return NULL;
    return t;
}

int qb_params_pack(qb_ctx *ctx) {
    qb_param_list *l = &ctx->params;
    if (ctx->device != QB_CPU) return qb_errorf(&ctx->err, "params_pack: %s parameters are not supported yet", qb_device_name(ctx->device));
    int64_t total = 0;
    for (int i = 0; i < l->n; i++) total += (qb_numel(l->items[i]) + 15) & ~(int64_t)15;
    float *data = qb_device_malloc(ctx->device, (size_t)(total ? total : 16) * sizeof(float));
    float *grad = qb_device_malloc(ctx->device, (size_t)(total ? total : 16) * sizeof(float));
    if (!data || !grad) {
        qb_device_free(ctx->device, data);
        qb_device_free(ctx->device, grad);
        return qb_errorf(&ctx->err, "params_pack: out of memory for %lld parameters", (long long)total);
    }
    int64_t off = 0;
    for (int i = 0; i < l->n; i++) {
        qb_tensor *p = l->items[i];
        int64_t n = qb_numel(p);
        memcpy(data + off, p->data, (size_t)n * sizeof(float));
        memcpy(grad + off, p->grad->data, (size_t)n * sizeof(float));
        free_param_memory(l, p);
        p->data = data + off;
        p->grad->data = grad + off;
        off += (n + 15) & ~(int64_t)15;
    }
    qb_device_free(ctx->device, l->block_data);
    qb_device_free(ctx->device, l->block_grad);
    l->block_data = data;
    l->block_grad = grad;
    l->block_numel = total;
    return 0;
}

qb_tensor *qb_param_find(qb_ctx *ctx, const char *name) {
    for (int i = 0; i < ctx->params.n; i++)
        if (strcmp(ctx->params.items[i]->name, name) == 0) return ctx->params.items[i];
    return NULL;
}

void qb_zero_grad(qb_ctx *ctx) {
    for (int i = 0; i < ctx->params.n; i++)
        if (ctx->params.items[i]->grad) qb_fill(ctx, ctx->params.items[i]->grad, 0.0f);
}

int qb_fill(qb_ctx *ctx, qb_tensor *t, float value) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "fill: tensor is not contiguous");
    int64_t n = qb_numel(t);
    if (t->device == QB_CUDA) {
        if (qb_cuda_fill(t->data, n, value)) return qb_errorf(&ctx->err, "fill: cuda failure");
        return 0;
    }
    float *x = t->data;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) x[i] = value;
    return 0;
}

int qb_fill_normal(qb_ctx *ctx, qb_tensor *t, float mean, float std) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "fill_normal: tensor is not contiguous");
    int64_t n = qb_numel(t);
    float *host = t->device == QB_CPU ? t->data : malloc((size_t)n * sizeof(float));
    if (!host) return qb_errorf(&ctx->err, "fill_normal: out of memory");
    qb_rng_normal(host, n, mean, std, ctx->seed, ctx->rng_counter);
    ctx->rng_counter += 2 * (uint64_t)n;
    int rc = 0;
    if (t->device != QB_CPU) {
        rc = qb_copy_from_host(ctx, t, host);
        free(host);
    }
    return rc;
}

/* Copies a strided 4-d view into a dense row-major buffer. */
static void gather_strided(float *dst, const qb_tensor *t) {
    int64_t sh[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    int off = 4 - t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        sh[off + d] = t->shape[d];
        st[off + d] = t->stride[d];
    }
    int64_t k = 0;
    for (int64_t a = 0; a < sh[0]; a++)
        for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++) {
                const float *src = t->data + a * st[0] + b * st[1] + c * st[2];
                for (int64_t e = 0; e < sh[3]; e++) dst[k++] = src[e * st[3]];
            }
}

int qb_to_host(qb_ctx *ctx, const qb_tensor *t, float *out) {
    int64_t n = qb_numel(t);
    if (t->device == QB_CUDA) {
        if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "to_host: non-contiguous cuda tensor");
        if (qb_cuda_memcpy_d2h(out, t->data, (size_t)n * sizeof(float))) return qb_errorf(&ctx->err, "to_host: cuda copy failed");
        return 0;
    }
    if (qb_is_contiguous(t)) memcpy(out, t->data, (size_t)n * sizeof(float));
    else gather_strided(out, t);
    return 0;
}

int qb_copy_from_host(qb_ctx *ctx, qb_tensor *t, const float *host) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "copy_from_host: tensor is not contiguous");
    size_t bytes = (size_t)qb_numel(t) * sizeof(float);
    if (t->device == QB_CUDA) {
        if (qb_cuda_memcpy_h2d(t->data, host, bytes)) return qb_errorf(&ctx->err, "copy_from_host: cuda copy failed");
        return 0;
    }
    memcpy(t->data, host, bytes);
    return 0;
}

/* tensor.c: see tensor.h. */
#include "autograd/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "autograd/cuda/backend.h"
#include "autograd/graph.h"
#include "autograd/rng.h"

int qb_kernel_missing(qb_err *err, const char *op, const char *entry, const char *device) {
    return qb_errorf(err, "%s: no %s kernel (%s)", op, device, entry);
}

int qb_kernel_status(qb_err *err, const char *op, const char *entry, const qb_kernels *k, qb_dev *d, int rc) {
    if (!rc) return 0;
    return qb_errorf(err, "%s: %s kernel %s failed: %s", op, k->name, entry, k->error_message ? k->error_message(d) : "no message");
}

static qb_cpu_gemm_lib resolve_cpu_gemm(qb_cpu_gemm_lib g);

qb_ctx *qb_ctx_new_on(const qb_kernels *k, qb_dev *dev, qb_device device, uint64_t seed, qb_err *err) {
    qb_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        qb_errorf(err, "out of memory creating context");
        return NULL;
    }
    ctx->device = device;
    ctx->seed = seed;
    ctx->dev = dev;
    ctx->k = k;
    ctx->gemm_epilogue = true;
    ctx->cpu_gemm = resolve_cpu_gemm(QB_CPU_GEMM_DEFAULT);
    const char *env_gemm = getenv("QB_CPU_GEMM");
    if (env_gemm && *env_gemm && (qb_cpu_gemm_parse(env_gemm, &ctx->cpu_gemm) || qb_ctx_set_cpu_gemm(ctx, ctx->cpu_gemm))) {
        qb_errorf(err, "QB_CPU_GEMM=%s: %s", env_gemm, ctx->err.msg[0] ? ctx->err.msg : "expected onednn, openblas or default");
        free(ctx);
        return NULL;
    }
    if (qb_arena_init(&ctx->meta, &qb_cpu_kernels, NULL, 1 << 20) || qb_arena_init(&ctx->act, k, dev, 0)) {
        qb_ctx_free(ctx);
        qb_errorf(err, "out of memory creating context arenas");
        return NULL;
    }
    return ctx;
}

qb_ctx *qb_ctx_new(qb_device device, uint64_t seed, qb_err *err) {
    if (device != QB_CUDA) return qb_ctx_new_on(&qb_cpu_kernels, NULL, device, seed, err);
    return qb_ctx_new_cuda(0, seed, err);
}

qb_ctx *qb_ctx_new_cuda(int ordinal, uint64_t seed, qb_err *err) {
    char msg[512];
    qb_dev *dev = qb_cuda_init(ordinal, msg, sizeof msg);
    if (!dev) {
        qb_errorf(err, "cuda: %s", msg);
        return NULL;
    }
    qb_ctx *ctx = qb_ctx_new_on(&qb_cuda_kernels, dev, QB_CUDA, seed, err);
    if (!ctx) qb_cuda_shutdown(dev);
    else ctx->owns_dev = true;
    return ctx;
}

/* The error of a failed allocation of the context's device (CUDA's reason included). */
static void alloc_failed(qb_ctx *ctx, size_t bytes) {
    qb_errorf(&ctx->err, "out of %s memory allocating %zu bytes%s%s", ctx->k->name, bytes, ctx->device == QB_CUDA ? ": " : "",
              ctx->device == QB_CUDA ? qb_cuda_last_error() : "");
}

void *qb_device_alloc(qb_ctx *ctx, size_t bytes) {
    void *p = ctx->k->alloc(ctx->dev, bytes);
    if (!p) alloc_failed(ctx, bytes);
    return p;
}

void qb_device_release(qb_ctx *ctx, void *p) { ctx->k->release(ctx->dev, p); }

/* Floats parameter p takes in the packed blocks (its elements, padded to 16). */
static int64_t block_floats(const qb_tensor *p) { return (qb_numel(p) + 15) & ~(int64_t)15; }

static bool in_block(const qb_param_list *l, const float *block, const float *p) {
    return block && p >= block && p < block + l->block_numel;
}

/* Bumps the parameter version when a write at p lands in the parameter block. */
static void note_write(qb_ctx *ctx, const void *p) {
    if (in_block(&ctx->params, ctx->params.block_data, p)) qb_params_touch(ctx);
}

void qb_params_touch(qb_ctx *ctx) { ctx->params.version++; }

bool qb_params_block_span(const qb_ctx *ctx, const qb_tensor *t, int64_t *first, int64_t *last) {
    const qb_param_list *l = &ctx->params;
    if (!t || !in_block(l, l->block_data, t->data)) return false;
    int64_t off = t->data - l->block_data, extent = 1;
    for (int d = 0; d < t->ndim; d++) extent += (t->shape[d] - 1) * t->stride[d];
    *first = off;
    *last = off + extent - 1 < l->block_numel ? off + extent - 1 : l->block_numel - 1;
    return true;
}

/* Frees a parameter's own memory (not memory inside the packed blocks). */
static void free_param_memory(qb_ctx *ctx, qb_tensor *p) {
    const qb_param_list *l = &ctx->params;
    if (!in_block(l, l->block_data, p->data)) qb_device_release(ctx, p->data);
    if (p->grad && !in_block(l, l->block_grad, p->grad->data)) qb_device_release(ctx, p->grad->data);
}

void qb_ctx_free(qb_ctx *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ctx->params.n; i++) {
        qb_tensor *p = ctx->params.items[i];
        free_param_memory(ctx, p);
        free(p->grad);
        free((char *)p->name);
        free(p);
    }
    if (ctx->params.block_data) qb_device_release(ctx, ctx->params.block_data);
    if (ctx->params.block_grad) qb_device_release(ctx, ctx->params.block_grad);
    qb_seg_table_free(ctx->k, ctx->dev, &ctx->params.seg);
    free(ctx->params.items);
    free(ctx->tape);
    qb_arena_free(&ctx->meta);
    qb_arena_free(&ctx->act);
    if (ctx->recompute_buf) qb_device_release(ctx, ctx->recompute_buf);
    if (ctx->owns_dev) qb_cuda_shutdown(ctx->dev);
    free(ctx);
}

static const char *const precision_names[] = {"fp32", "tf32", "bf16"};

const char *qb_precision_name(qb_precision p) { return (unsigned)p < 3 ? precision_names[p] : "unknown"; }

int qb_precision_parse(const char *s, qb_precision *p) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, precision_names[i]) == 0) return *p = (qb_precision)i, 0;
    return -1;
}

int qb_ctx_set_precision(qb_ctx *ctx, qb_precision p) {
    if ((unsigned)p > QB_PREC_BF16) return qb_errorf(&ctx->err, "precision: unknown GEMM precision %d", (int)p);
    if (!ctx->k->set_precision && p != QB_PREC_FP32)
        return qb_errorf(&ctx->err, "precision %s: the %s device computes GEMMs in fp32 only", qb_precision_name(p), ctx->k->name);
    if (ctx->k == &qb_cpu_kernels && p == QB_PREC_TF32)
        return qb_errorf(&ctx->err, "precision tf32: the cpu device computes GEMMs in fp32 or bf16 only");
    if (ctx->k == &qb_cpu_kernels && p == QB_PREC_BF16 && qb_cpu_bf16_unavailable())
        return qb_errorf(&ctx->err, "precision bf16 on the cpu: %s", qb_cpu_bf16_unavailable());
    if (ctx->k->set_precision && QB_KERNEL(ctx, "precision", set_precision, p)) return -1;
    ctx->precision = p;
    return 0;
}

static qb_cpu_gemm_lib resolve_cpu_gemm(qb_cpu_gemm_lib g) {
    return g != QB_CPU_GEMM_DEFAULT ? g : qb_cpu_have_onednn() ? QB_CPU_GEMM_ONEDNN : QB_CPU_GEMM_OPENBLAS;
}

int qb_ctx_set_cpu_gemm(qb_ctx *ctx, qb_cpu_gemm_lib g) {
    if ((unsigned)g > QB_CPU_GEMM_OPENBLAS) return qb_errorf(&ctx->err, "cpu_gemm: unknown library %d", (int)g);
    if (g == QB_CPU_GEMM_ONEDNN && !qb_cpu_have_onednn()) return qb_errorf(&ctx->err, "cpu_gemm onednn: this build has no oneDNN (libdnnl-dev)");
    ctx->cpu_gemm = resolve_cpu_gemm(g);
    return 0;
}

const char *qb_cpu_gemm_name(qb_cpu_gemm_lib g) { return resolve_cpu_gemm(g) == QB_CPU_GEMM_ONEDNN ? "onednn" : "openblas"; }

int qb_cpu_gemm_parse(const char *s, qb_cpu_gemm_lib *g) {
    if (!strcmp(s, "onednn")) *g = QB_CPU_GEMM_ONEDNN;
    else if (!strcmp(s, "openblas")) *g = QB_CPU_GEMM_OPENBLAS;
    else if (!strcmp(s, "default")) *g = QB_CPU_GEMM_DEFAULT;
    else return -1;
    return 0;
}

/* The device's memory in use now, kept as the high-water mark; *total its size (0 when not measured). */
static void sample_device_memory(qb_ctx *ctx, size_t *total) {
    size_t used = 0, tot = 0;
    if (ctx->k->mem_info && ctx->k->mem_info(ctx->dev, &used, &tot) == 0 && used > ctx->device_used_peak) ctx->device_used_peak = used;
    if (total) *total = tot;
}

void qb_ctx_memory(qb_ctx *ctx, qb_memory_stats *s) {
    memset(s, 0, sizeof *s);
    sample_device_memory(ctx, &s->device_total);
    s->act_peak = ctx->act.peak;
    s->act_planned = ctx->act.cap;
    s->meta_peak = ctx->meta.peak;
    s->params = 2 * (size_t)ctx->params.block_numel * sizeof(float);
    s->device_used_peak = ctx->device_used_peak;
    s->recompute = ctx->recompute_bytes;
}

int qb_ctx_step_reset(qb_ctx *ctx) {
    sample_device_memory(ctx, NULL); /* the step's memory is all still held here */
    ctx->n_tape = 0;
    qb_err_clear(&ctx->err);
    if (qb_arena_reset(&ctx->meta) || qb_arena_reset(&ctx->act))
        return qb_errorf(&ctx->err, "out of memory growing the step arena");
    return 0;
}

void *qb_act_alloc(qb_ctx *ctx, size_t bytes) {
    void *p = qb_arena_alloc(&ctx->act, bytes);
    if (!p) alloc_failed(ctx, bytes);
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

/* A contiguous tensor struct of shape on the context's device, in the host arena, without data. */
static qb_tensor *new_header(qb_ctx *ctx, int ndim, const int64_t *shape) {
    if (qb_ctx_failed(ctx) || check_shape(ctx, ndim, shape)) return NULL;
    qb_tensor *t = qb_meta_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    qb_set_contiguous_strides(t);
    t->device = ctx->device;
    return t;
}

qb_tensor *qb_new(qb_ctx *ctx, int ndim, const int64_t *shape) {
    qb_tensor *t = new_header(ctx, ndim, shape);
    if (!t) return NULL;
    t->data = qb_act_alloc(ctx, (size_t)qb_numel(t) * sizeof(float));
    t->owns_data = true;
    return t->data ? t : NULL;
}

/* The recompute buffer, grown to at least `bytes` (its old contents are not kept). */
static float *recompute_buffer(qb_ctx *ctx, size_t bytes) {
    if (bytes <= ctx->recompute_bytes) return ctx->recompute_buf;
    if (ctx->recompute_buf) qb_device_release(ctx, ctx->recompute_buf);
    ctx->recompute_bytes = 0;
    if (!(ctx->recompute_buf = qb_device_alloc(ctx, bytes))) return NULL;
    ctx->recompute_bytes = bytes;
    return ctx->recompute_buf;
}

qb_tensor *qb_new_recomputed(qb_ctx *ctx, int ndim, const int64_t *shape) {
    qb_tensor *t = new_header(ctx, ndim, shape);
    if (!t) return NULL;
    t->recomputed = true;
    t->data = recompute_buffer(ctx, (size_t)qb_numel(t) * sizeof(float));
    return t->data ? t : NULL;
}

const float *qb_saved_data(qb_ctx *ctx, qb_tensor *t) {
    if (!t->recomputed) return t->data;
    if (!t->node || !t->node->recompute) return qb_errorf(&ctx->err, "backward: a recomputed tensor has no recording op"), NULL;
    if (!(t->data = recompute_buffer(ctx, (size_t)qb_numel(t) * sizeof(float)))) return NULL;
    t->node->recompute(ctx, t->node);
    return qb_ctx_failed(ctx) ? NULL : t->data;
}

void qb_act_release(qb_ctx *ctx, void *p, size_t bytes) {
    if (p) (void)qb_arena_release(&ctx->act, p, bytes); /* a failure only forgoes the reuse */
}

uint16_t *qb_bf16_copy(qb_ctx *ctx, qb_tensor *t) {
    if (t->bf16) return t->bf16;
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "bf16 copy: the tensor is not contiguous"), NULL;
    int64_t n = qb_numel(t);
    uint16_t *y = qb_act_alloc(ctx, (size_t)n * sizeof *y);
    if (!y || QB_KERNEL(ctx, "bf16 copy", cast_bf16, y, t->data, n)) return NULL;
    if (t->owns_data) t->bf16 = y;
    return y;
}

void qb_mark_gemm_input(qb_tensor *t) {
    if (t && t->owns_data) t->gemm_input = true;
}

void qb_release_f32(qb_ctx *ctx, qb_tensor *t) {
    if (!t || !t->bf16 || !t->owns_data || !t->data) return;
    qb_act_release(ctx, t->data, (size_t)qb_numel(t) * sizeof(float));
    t->data = NULL;
    t->owns_data = t->gemm_input = false;
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
    t->data = ctx->k->alloc(ctx->dev, (size_t)qb_numel(t) * sizeof(float));
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
        if (t) qb_device_release(ctx, t->data);
        if (g) qb_device_release(ctx, g->data);
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
    int64_t total = 0;
    for (int i = 0; i < l->n; i++) total += block_floats(l->items[i]);
    float *data = qb_device_alloc(ctx, (size_t)(total ? total : 16) * sizeof(float));
    float *grad = data ? qb_device_alloc(ctx, (size_t)(total ? total : 16) * sizeof(float)) : NULL;
    int rc = data && grad ? 0 : qb_err_context(&ctx->err, "params_pack: %lld parameters", (long long)total);
    if (!rc) rc = QB_KERNEL(ctx, "params_pack", fill, data, total, 0.0f) || QB_KERNEL(ctx, "params_pack", fill, grad, total, 0.0f);
    int64_t off = 0;
    for (int i = 0; !rc && i < l->n; i++) {
        const qb_tensor *p = l->items[i];
        size_t bytes = (size_t)qb_numel(p) * sizeof(float);
        rc = qb_device_copy(ctx, data + off, p->data, bytes) || qb_device_copy(ctx, grad + off, p->grad->data, bytes);
        off += block_floats(p);
    }
    if (rc) {
        if (data) qb_device_release(ctx, data);
        if (grad) qb_device_release(ctx, grad);
        return -1;
    }
    off = 0;
    for (int i = 0; i < l->n; i++) {
        qb_tensor *p = l->items[i];
        free_param_memory(ctx, p);
        p->data = data + off;
        p->grad->data = grad + off;
        off += block_floats(p);
    }
    if (l->block_data) qb_device_release(ctx, l->block_data);
    if (l->block_grad) qb_device_release(ctx, l->block_grad);
    l->block_data = data;
    l->block_grad = grad;
    l->block_numel = total;
    qb_params_touch(ctx);
    return 0;
}

int qb_params_ensure_packed(qb_ctx *ctx) {
    const qb_param_list *l = &ctx->params;
    for (int i = 0; i < l->n; i++)
        if (!in_block(l, l->block_data, l->items[i]->data)) return qb_params_pack(ctx);
    return 0;
}

int qb_params_layout(qb_ctx *ctx, qb_seg_table *t) {
    if (qb_params_ensure_packed(ctx)) return -1;
    const qb_param_list *l = &ctx->params;
    if (l->n > t->cap) {
        qb_seg_table_free(ctx->k, ctx->dev, t);
        t->host = calloc((size_t)l->n, sizeof *t->host);
        t->sent = calloc((size_t)l->n, sizeof *t->sent);
        t->dev = ctx->k->alloc(ctx->dev, (size_t)l->n * sizeof *t->dev);
        t->scratch = ctx->k->alloc(ctx->dev, (size_t)l->n * sizeof *t->scratch);
        if (!t->host || !t->sent || !t->dev || !t->scratch) {
            qb_seg_table_free(ctx->k, ctx->dev, t);
            return qb_errorf(&ctx->err, "params: out of memory for %d segments", l->n);
        }
        t->cap = l->n;
        t->n = -1;  /* nothing sent yet */
    }
    for (int i = 0; i < l->n; i++) {
        const qb_tensor *p = l->items[i];
        t->host[i] = (qb_segment){.offset = p->data - l->block_data, .n = qb_numel(p),
                                  .flags = p->requires_grad && p->grad ? QB_SEG_GRAD : 0};
    }
    if (t->n != l->n) memset(t->sent, 0xff, (size_t)t->cap * sizeof *t->sent);
    t->n = l->n;
    return 0;
}

int qb_seg_table_sync(qb_ctx *ctx, qb_seg_table *t) {
    size_t bytes = (size_t)t->n * sizeof *t->host;
    if (t->n <= 0 || memcmp(t->host, t->sent, bytes) == 0) return 0;
    if (qb_upload(ctx, t->dev, t->host, bytes)) return -1;
    memcpy(t->sent, t->host, bytes);
    return 0;
}

void qb_seg_table_free(const qb_kernels *k, qb_dev *dev, qb_seg_table *t) {
    free(t->host);
    free(t->sent);
    if (t->dev) k->release(dev, t->dev);
    if (t->scratch) k->release(dev, t->scratch);
    memset(t, 0, sizeof *t);
}

qb_tensor *qb_param_find(qb_ctx *ctx, const char *name) {
    for (int i = 0; i < ctx->params.n; i++)
        if (strcmp(ctx->params.items[i]->name, name) == 0) return ctx->params.items[i];
    return NULL;
}

void qb_zero_grad(qb_ctx *ctx) {
    qb_param_list *l = &ctx->params;
    l->n_grad_zero = 0;
    for (int i = 0; i < l->n; i++) {
        qb_tensor *p = l->items[i];
        p->grad_zero = p->grad != NULL;
        l->n_grad_zero += p->grad_zero;
    }
}

/* Writes the zeros of the marked gradients: those of the block overlapping [first, last], and with all also those
 * outside the block. Adjacent ones in the block (their padding included, which is zero anyway) take one fill. */
static int flush_zero_grads(qb_ctx *ctx, int64_t first, int64_t last, bool all) {
    qb_param_list *l = &ctx->params;
    int64_t run_at = 0, run_end = 0; /* the pending fill [run_at, run_end) of the block */
    int rc = 0;
    for (int i = 0; i < l->n && l->n_grad_zero > 0 && !rc; i++) {
        qb_tensor *p = l->items[i];
        if (!p->grad_zero) continue;
        const float *g = p->grad->data;
        if (!in_block(l, l->block_grad, g)) {
            if (!all) continue;
            rc = QB_KERNEL(ctx, "zero_grad", fill, p->grad->data, qb_numel(p), 0.0f);
        } else {
            int64_t at = g - l->block_grad, end = at + block_floats(p);
            if (end > at && (end <= first || at > last)) continue;
            if (at != run_end) {
                if (run_end > run_at) rc = QB_KERNEL(ctx, "zero_grad", fill, l->block_grad + run_at, run_end - run_at, 0.0f);
                run_at = at;
            }
            run_end = end;
        }
        p->grad_zero = false;
        l->n_grad_zero--;
    }
    if (!rc && run_end > run_at) rc = QB_KERNEL(ctx, "zero_grad", fill, l->block_grad + run_at, run_end - run_at, 0.0f);
    return rc;
}

int qb_zero_grad_flush(qb_ctx *ctx) { return ctx->params.n_grad_zero ? flush_zero_grads(ctx, 0, INT64_MAX, true) : 0; }

int qb_zero_grad_flush_span(qb_ctx *ctx, int64_t first, int64_t last) {
    return ctx->params.n_grad_zero ? flush_zero_grads(ctx, first, last, false) : 0;
}

int qb_fill(qb_ctx *ctx, qb_tensor *t, float value) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "fill: tensor is not contiguous");
    note_write(ctx, t->data);
    return QB_KERNEL(ctx, "fill", fill, t->data, qb_numel(t), value);
}

int qb_fill_normal(qb_ctx *ctx, qb_tensor *t, float mean, float std) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "fill_normal: tensor is not contiguous");
    int64_t n = qb_numel(t);
    float *host = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!host) return qb_errorf(&ctx->err, "fill_normal: out of memory");
    qb_rng_normal(host, n, mean, std, ctx->seed, ctx->rng_counter);
    ctx->rng_counter += 2 * (uint64_t)n;
    int rc = qb_copy_from_host(ctx, t, host);
    free(host);
    return rc;
}

int qb_download(qb_ctx *ctx, void *host, const void *device_src, size_t bytes) {
    return QB_KERNEL(ctx, "download", memcpy_d2h, host, device_src, bytes);
}

int qb_upload(qb_ctx *ctx, void *device_dst, const void *host, size_t bytes) {
    note_write(ctx, device_dst);
    return QB_KERNEL(ctx, "upload", memcpy_h2d, device_dst, host, bytes);
}

int qb_device_copy(qb_ctx *ctx, void *dst, const void *src, size_t bytes) {
    note_write(ctx, dst);
    return QB_KERNEL(ctx, "device copy", memcpy_d2d, dst, src, bytes);
}

int qb_device_scale(qb_ctx *ctx, float *p, float s, int64_t n) {
    note_write(ctx, p);
    return QB_KERNEL(ctx, "device scale", scale, p, p, s, n);
}

int qb_copy_to_device(qb_ctx *ctx, float *dst, const qb_tensor *t) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "device copy: the tensor is not contiguous");
    return qb_device_copy(ctx, dst, t->data, (size_t)qb_numel(t) * sizeof(float));
}

int32_t *qb_upload_i32(qb_ctx *ctx, const int32_t *host, int64_t n) {
    int32_t *d = qb_act_alloc(ctx, (size_t)n * sizeof(int32_t));
    return d && !qb_upload(ctx, d, host, (size_t)n * sizeof(int32_t)) ? d : NULL;
}

float *qb_upload_f32(qb_ctx *ctx, const float *host, int64_t n) {
    float *d = qb_act_alloc(ctx, (size_t)n * sizeof(float));
    return d && !qb_upload(ctx, d, host, (size_t)n * sizeof(float)) ? d : NULL;
}

float qb_item(qb_ctx *ctx, const qb_tensor *t) {
    float v = NAN;
    if (qb_numel(t) != 1) {
        char s[64];
        qb_errorf(&ctx->err, "item: tensor of shape %s is not one value", qb_shape_str(t, s, sizeof s));
        return NAN;
    }
    if (qb_download(ctx, &v, t->data, sizeof v)) return NAN;
    return v;
}

qb_tensor qb_view_rows(const qb_tensor *t, int64_t first, int64_t n) {
    qb_tensor v = *t;
    int64_t row = t->ndim > 1 ? t->stride[0] : 1;
    v.data = t->data + first * row;
    if (v.ndim > 0) v.shape[0] = n;
    v.grad = NULL;
    v.node = NULL;
    v.requires_grad = v.is_param = v.grad_given = false;
    v.name = NULL;
    v.bf16 = NULL;
    v.owns_data = v.gemm_input = v.grad_zero = false;
    v.grad_alias = NULL;
    return v;
}

int qb_to_host(qb_ctx *ctx, const qb_tensor *t, float *out) {
    int64_t n = qb_numel(t);
    if (qb_is_contiguous(t)) return qb_download(ctx, out, t->data, (size_t)n * sizeof(float));
    if (ctx->k->host_memory) return QB_KERNEL(ctx, "to_host", copy_strided, out, t->data, t->ndim, t->shape, t->stride);
    float *tmp = qb_act_alloc(ctx, (size_t)n * sizeof(float));
    if (!tmp || QB_KERNEL(ctx, "to_host", copy_strided, tmp, t->data, t->ndim, t->shape, t->stride)) return -1;
    return qb_download(ctx, out, tmp, (size_t)n * sizeof(float));
}

int qb_copy_from_host(qb_ctx *ctx, qb_tensor *t, const float *host) {
    if (!qb_is_contiguous(t)) return qb_errorf(&ctx->err, "copy_from_host: tensor is not contiguous");
    return qb_upload(ctx, t->data, host, (size_t)qb_numel(t) * sizeof(float));
}

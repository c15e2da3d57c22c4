/* tensor.h: N-d float32 tensors (up to 4 dims, strided views), and the context that owns their memory.
 *
 * Memory: parameters live in the context's persistent storage until qb_ctx_free; activations, graph nodes
 * and activation gradients live in arenas that qb_ctx_step_reset makes reusable each step.
 * Errors: a function that fails sets ctx->err and returns NULL; an op given a NULL input returns NULL,
 * so a forward pass can be written straight and checked once at the end.
 * Tensor memory is the context device's: code outside the kernels (src/autograd/cpu/, cuda/) never reads or writes
 * it through ->data; it calls the kernel table (QB_KERNEL) or the explicit copies below (qb_item, qb_to_host,
 * qb_copy_from_host, qb_upload*, qb_download).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "autograd/arena.h"
#include "autograd/backend.h"
#include "autograd/device.h"

#define QB_MAX_DIMS 4

typedef enum { QB_F32 = 0, QB_BF16 = 1, QB_F16 = 2 } qb_dtype;

typedef struct qb_node qb_node;

typedef struct qb_tensor {
    int ndim;
    int64_t shape[QB_MAX_DIMS];
    int64_t stride[QB_MAX_DIMS];  /* in elements */
    qb_dtype dtype;               /* only QB_F32 is computed on today */
    qb_device device;
    float *data;                  /* first element; a view points inside another tensor's storage */
    struct qb_tensor *grad;       /* contiguous, same shape; parameters own theirs, activations get one in backward */
    qb_node *node;                /* the op that produced this tensor, when recorded */
    bool requires_grad;
    bool is_param;
    bool grad_given;              /* backward handed this tensor's gradient buffer on to an input */
    const char *name;             /* parameters only */
    bool recomputed;              /* data is the context's recompute buffer: read it in a backward through qb_saved_data */
    uint16_t *bf16;               /* its values rounded to bf16 (step memory, qb_bf16_copy) for the GEMMs of precision bf16;
                                   * views and parameters have none */
    bool owns_data;               /* data is its own step allocation of numel floats (qb_new), which qb_release_f32 may free */
    bool gemm_input;              /* qb_mark_gemm_input: read only by linears until qb_release_f32 */
    bool grad_zero;               /* parameters: the gradient is zero but its memory is not written yet (qb_zero_grad) */
    struct qb_tensor *grad_alias; /* a parameter, its producer's only input, whose gradient may hold this tensor's: the
                                   * producer's backward then finishes it in place (qb_grad_for_write) */
} qb_tensor;

/* A segment layout of the packed blocks with its device copy (see qb_params_layout). */
typedef struct qb_seg_table {
    qb_segment *host;  /* [n] */
    qb_segment *sent;  /* [n] what dev holds */
    qb_segment *dev;   /* [n] device memory */
    double *scratch;   /* [n] device memory for per-segment sums */
    int n, cap;
} qb_seg_table;

typedef struct qb_param_list {
    qb_tensor **items;
    int n, cap;
    float *block_data, *block_grad;  /* after qb_params_pack: every parameter and gradient, contiguous (else NULL) */
    int64_t block_numel;             /* floats in each block (parameters padded to 16 floats, padding zero) */
    qb_seg_table seg;                /* the parameters' layout (gradient clipping) */
    uint64_t version;                /* bumped by every write into block_data (qb_params_touch): caches of values derived
                                      * from the parameters compare it */
    int n_grad_zero;                 /* parameters whose gradient is marked zero (grad_zero) */
} qb_param_list;

#define QB_PROFILE_MAX_OPS 48

/* Seconds spent per op kind, forward and backward (ops in no-grad mode are not seen). */
typedef struct qb_profile {
    bool on;
    double mark;                          /* time of the last recorded op */
    int n;
    const char *op[QB_PROFILE_MAX_OPS];
    double fwd_s[QB_PROFILE_MAX_OPS], bwd_s[QB_PROFILE_MAX_OPS];
    int64_t calls[QB_PROFILE_MAX_OPS];
} qb_profile;

typedef struct qb_ctx {
    qb_err err;              /* first error since the last reset */
    qb_device device;        /* where new tensors are placed */
    qb_arena meta;           /* host arena: tensor structs and graph nodes */
    qb_arena act;            /* device arena: activation data and activation gradients */
    qb_node **tape;          /* recorded ops, forward order */
    int n_tape, cap_tape;
    qb_param_list params;    /* persistent tensors, in creation order */
    bool no_grad;            /* true: ops are not recorded (evaluation, calibration) */
    bool training;           /* true: dropout is active */
    uint64_t seed;
    uint64_t rng_counter;    /* next unused RNG counter; advanced by each random op */
    const qb_kernels *k;     /* the device's kernel table */
    qb_dev *dev;             /* the device's state (stream, library handles), passed to every kernel; NULL on the CPU */
    bool owns_dev;           /* qb_ctx_free shuts the CUDA state down */
    const void *quant_kernels; /* the quant layer's table when it is not the device's own (a test device); else NULL */
    qb_precision precision;  /* GEMM compute precision (qb_ctx_set_precision; fp32 by default) */
    qb_cpu_gemm_lib cpu_gemm;    /* the CPU's fp32 GEMM library (qb_ctx_set_cpu_gemm; $QB_CPU_GEMM at creation, else the default) */
    qb_profile profile;      /* per-op timings when profile.on */
    /* called by qb_backward after tape node k's backward (k = n_tape-1 down to 0, reached or not); non-zero stops the
     * pass (the hook sets err): the gradient all-reduce starts buckets whose gradients are final */
    int (*backward_hook)(struct qb_ctx *ctx, int k, void *user);
    void *backward_user;
    size_t device_used_peak; /* largest device memory in use seen at a step reset (k->mem_info; 0: not measured) */
    bool gemm_epilogue;      /* the linear's bias (+ tanh GELU) and bias gradient in its GEMMs where the device can (default on) */
    float *recompute_buf;    /* device memory of the recomputed activations (qb_new_recomputed), one at a time */
    size_t recompute_bytes;
} qb_ctx;

/* Memory of a context (bytes): what its step arenas planned and reached, and the device's measured high-water mark. */
typedef struct qb_memory_stats {
    size_t act_peak;         /* activation arena: largest step (used + spilled) */
    size_t act_planned;      /* its one block, sized after the first steps from that peak (+1/8) */
    size_t meta_peak;        /* host arena of tensor structs and tape nodes: largest step */
    size_t params;           /* the packed parameter and gradient blocks */
    size_t device_used_peak; /* device memory in use (all allocations, library workspaces included), largest sampled at
                              * step resets and now; 0 where the device has no mem_info (the CPU) */
    size_t device_total;
    size_t recompute;        /* the recompute buffer (outside the arena): the largest recomputed activation */
} qb_memory_stats;

/* The context's memory figures (samples the device once more). */
void qb_ctx_memory(qb_ctx *ctx, qb_memory_stats *s);

/* Creates a context on a device with an RNG seed; NULL when the device is unavailable (message in err). */
qb_ctx *qb_ctx_new(qb_device device, uint64_t seed, qb_err *err);
/* Creates a context on the visible CUDA device `ordinal` (qb_ctx_new(QB_CUDA) is ordinal 0). */
qb_ctx *qb_ctx_new_cuda(int ordinal, uint64_t seed, qb_err *err);
/* Creates a context whose tensors are on `device` with a given kernel table and device state (kept by the caller):
 * qb_ctx_new's table for the device, or a test device's. */
qb_ctx *qb_ctx_new_on(const qb_kernels *k, qb_dev *dev, qb_device device, uint64_t seed, qb_err *err);
/* Frees the context, its parameters and arenas. */
void qb_ctx_free(qb_ctx *ctx);
/* Starts a new step: clears the tape, the error and all activation memory (parameters are kept). */
int qb_ctx_step_reset(qb_ctx *ctx);
/* Sets the GEMM compute precision of ctx's device (QB_PREC_FP32, the default, everywhere; TF32 and BF16 on cuda; BF16 on
 * a cpu with AVX512-BF16 or AMX in a build with oneDNN); on cuda the device state's setting, shared by contexts on one
 * state. 0, or -1 with ctx->err. */
int qb_ctx_set_precision(qb_ctx *ctx, qb_precision p);
/* Sets the library of the CPU's fp32 GEMMs (QB_CPU_GEMM_DEFAULT: oneDNN where built with it, else OpenBLAS); -1 with
 * ctx->err set when the build lacks it. Other devices keep the setting and ignore it. */
int qb_ctx_set_cpu_gemm(qb_ctx *ctx, qb_cpu_gemm_lib g);
/* "onednn" or "openblas"; the default is named as it resolves in this build. */
const char *qb_cpu_gemm_name(qb_cpu_gemm_lib g);
/* "oneDNN X.Y.Z sgemm" or "OpenBLAS sgemm": what g (the default resolved) runs, into buf. */
void qb_cpu_gemm_describe(qb_cpu_gemm_lib g, char *buf, size_t n);
/* The library named s ("onednn", "openblas", "default"); -1 when s names none. */
int qb_cpu_gemm_parse(const char *s, qb_cpu_gemm_lib *g);
/* "fp32", "tf32", "bf16". */
const char *qb_precision_name(qb_precision p);
/* The precision named s (as qb_precision_name spells it); -1 when s names none. */
int qb_precision_parse(const char *s, qb_precision *p);
/* Returns true (and leaves ctx->err set) when an error happened since the last reset. */
static inline bool qb_ctx_failed(const qb_ctx *ctx) { return ctx->err.failed != 0; }

/* Runs kernel `entry` of ctx's table with ctx's device state; evaluates to 0, or -1 with ctx->err naming op and the
 * device: "<op>: no <device> kernel (<entry>)" for a NULL entry, the device's message for a failure. */
#define QB_KERNEL(ctx, op, entry, ...) QB_TABLE_CALL(&(ctx)->err, (ctx)->k, (ctx)->k, (ctx)->dev, op, entry, __VA_ARGS__)
/* The same for any table (`table`; k: the device's memory table, whose error_message explains failures). */
#define QB_TABLE_CALL(err, table, k, dev, op, entry, ...)                                                     \
    ((table)->entry ? qb_kernel_status(err, op, #entry, k, dev, (table)->entry(dev, __VA_ARGS__))             \
                    : qb_kernel_missing(err, op, #entry, (table)->name))
/* The error of a NULL table entry (one message for every op and device). */
int qb_kernel_missing(qb_err *err, const char *op, const char *entry, const char *device);
/* 0 when rc is 0; else an error naming op, the device, the entry and the device's message. */
int qb_kernel_status(qb_err *err, const char *op, const char *entry, const qb_kernels *k, qb_dev *d, int rc);

/* A new activation tensor (contiguous, uninitialised) in the step arena. */
qb_tensor *qb_new(qb_ctx *ctx, int ndim, const int64_t *shape);
/* A new activation tensor (contiguous, uninitialised) whose data is the context's recompute buffer, not the arena: it
 * stays valid only until the next such tensor is made, so its producer records a node with `recompute` set and every
 * backward that reads it calls qb_saved_data (memory: one buffer for all of them instead of one per tensor). */
qb_tensor *qb_new_recomputed(qb_ctx *ctx, int ndim, const int64_t *shape);
/* t's data for a backward that reads it: a recomputed tensor is rewritten first by its producer's node; NULL on error. */
const float *qb_saved_data(qb_ctx *ctx, qb_tensor *t);
/* A new activation tensor filled with zeros. */
qb_tensor *qb_zeros(qb_ctx *ctx, int ndim, const int64_t *shape);
/* A new activation tensor holding a copy of host data (n = numel floats). */
qb_tensor *qb_from_host(qb_ctx *ctx, int ndim, const int64_t *shape, const float *host);
/* A persistent parameter with a zeroed gradient; requires_grad set. name is copied. */
qb_tensor *qb_param_new(qb_ctx *ctx, const char *name, int ndim, const int64_t *shape);
/* Moves every parameter and its gradient into one block each (llm.c's single parameter buffer), so that one
 * all-reduce, optimizer pass or checkpoint write covers them all; values are kept, padding is zero. Pointers into the
 * old parameter memory become invalid. Parameters created later get their own memory until the next pack. */
int qb_params_pack(qb_ctx *ctx);
/* The element range [*first, *last] of the packed parameter block that the view t covers (clipped to the block);
 * false when t does not start inside the block (not a parameter view, or not packed). */
bool qb_params_block_span(const qb_ctx *ctx, const qb_tensor *t, int64_t *first, int64_t *last);
/* Packs unless every parameter already lies in the blocks. */
int qb_params_ensure_packed(qb_ctx *ctx);
/* Fills t->host with every parameter's segment (creation order; QB_SEG_GRAD when it requires grad), packing first
 * when needed, and brings t->dev up to date (an upload only when the layout or a flag changed). */
int qb_params_layout(qb_ctx *ctx, qb_seg_table *t);
/* Uploads t->host to t->dev when it differs from what dev holds. */
int qb_seg_table_sync(qb_ctx *ctx, qb_seg_table *t);
/* Frees a segment table's memory (device memory of table k). */
void qb_seg_table_free(const qb_kernels *k, qb_dev *dev, qb_seg_table *t);
/* Notes that the parameter values changed (ctx->params.version + 1). The engine's writes (uploads, fills and copies into
 * the block, packing) call it; code that writes the block through a kernel of its own (an optimizer step) must. */
void qb_params_touch(qb_ctx *ctx);
/* Finds a parameter by name, or NULL. */
qb_tensor *qb_param_find(qb_ctx *ctx, const char *name);
/* Sets every parameter gradient to zero lazily (PyTorch's set_to_none): each is marked zero (grad_zero), not written.
 * The first backward writer of a marked gradient overwrites it (qb_grad_for_write) or zero-fills it first (qb_grad);
 * qb_backward writes the zeros of those it did not reach at its end. Code that reads or writes gradient memory in
 * other ways (optimizer, clipping, all-reduce, tests) calls qb_zero_grad_flush first. */
void qb_zero_grad(qb_ctx *ctx);
/* Writes the zeros of every gradient still marked zero (one fill per run of adjacent ones in the gradient block). */
int qb_zero_grad_flush(qb_ctx *ctx);
/* The same for the marked gradients of the packed block that overlap its elements [first, last] (each written whole). */
int qb_zero_grad_flush_span(qb_ctx *ctx, int64_t first, int64_t last);

/* Number of elements. */
int64_t qb_numel(const qb_tensor *t);
/* True when the elements are laid out row-major without gaps. */
bool qb_is_contiguous(const qb_tensor *t);
/* Formats a shape like "[2, 3, 4]" into buf (returns buf). */
const char *qb_shape_str(const qb_tensor *t, char *buf, int n);
/* Fills row-major strides from the shape. */
void qb_set_contiguous_strides(qb_tensor *t);
/* Copies the tensor (any strides) into host memory out (numel floats, row-major). */
int qb_to_host(qb_ctx *ctx, const qb_tensor *t, float *out);
/* Copies host data (numel floats, row-major) into a contiguous tensor. */
int qb_copy_from_host(qb_ctx *ctx, qb_tensor *t, const float *host);
/* The value of a one-element tensor (a device read); NaN with ctx->err set on failure. */
float qb_item(qb_ctx *ctx, const qb_tensor *t);
/* bytes of device memory (the context's device) into host memory. */
int qb_download(qb_ctx *ctx, void *host, const void *device_src, size_t bytes);
/* bytes of host memory into device memory. */
int qb_upload(qb_ctx *ctx, void *device_dst, const void *host, size_t bytes);
/* bytes of device memory into device memory. */
int qb_device_copy(qb_ctx *ctx, void *dst, const void *src, size_t bytes);
/* p[i] *= s for n floats of device memory, in the device's stream order. */
int qb_device_scale(qb_ctx *ctx, float *p, float s, int64_t n);
/* Copies a contiguous tensor's numel floats into device memory dst (the context's device). */
int qb_copy_to_device(qb_ctx *ctx, float *dst, const qb_tensor *t);
/* A step-memory copy on the device of n host int32 values (ids, labels); NULL on error. */
int32_t *qb_upload_i32(qb_ctx *ctx, const int32_t *host, int64_t n);
/* A step-memory copy on the device of n host floats (amax values); NULL on error. */
float *qb_upload_f32(qb_ctx *ctx, const float *host, int64_t n);
/* A view (not recorded) of rows [first, first + n) along dim 0 of a contiguous tensor, sharing its memory. */
qb_tensor qb_view_rows(const qb_tensor *t, int64_t first, int64_t n);
/* Fills a contiguous tensor with a constant. */
int qb_fill(qb_ctx *ctx, qb_tensor *t, float value);
/* Fills a contiguous tensor with N(mean, std) from the context RNG. */
int qb_fill_normal(qb_ctx *ctx, qb_tensor *t, float mean, float std);

/* Persistent memory of the context's device (NULL with ctx->err set), freed with qb_device_release. */
void *qb_device_alloc(qb_ctx *ctx, size_t bytes);
void qb_device_release(qb_ctx *ctx, void *p);
/* Allocates `bytes` of step memory on the context device (for ops' saved buffers). */
void *qb_act_alloc(qb_ctx *ctx, size_t bytes);
/* Hands step memory from qb_act_alloc (`bytes` at p) back for later allocations of the step; p is not used again. */
void qb_act_release(qb_ctx *ctx, void *p, size_t bytes);
/* t's values rounded to bf16 (nearest even: the bf16 GEMMs' rounding), contiguous, in step memory: made on first use
 * and kept in t->bf16, except for parameters and views, which get a fresh copy each call; NULL with ctx->err on failure. */
uint16_t *qb_bf16_copy(qb_ctx *ctx, qb_tensor *t);
/* Marks t as read from here on only as the input of linears, up to a qb_release_f32 after the last one: under precision
 * bf16 those linears, when recorded, keep t's bf16 copy for their backward instead of t (unmarked inputs are kept in
 * fp32 and rounded inside each GEMM). Views, parameters and recomputed tensors (qb_new_recomputed: not kept anyway, their
 * linears' dW GEMMs read them again through qb_saved_data) are not marked. */
void qb_mark_gemm_input(qb_tensor *t);
/* The caller's promise that t's fp32 values are not read again this step, by later ops or by any backward, other than
 * through t->bf16: when t has a bf16 copy and owns its memory, that memory goes back to the step arena and t->data
 * becomes NULL; otherwise (no copy: precision fp32 or tf32, no-grad mode; a view; a parameter) nothing happens. */
void qb_release_f32(qb_ctx *ctx, qb_tensor *t);
/* Allocates `bytes` of step memory on the host. */
void *qb_meta_alloc(qb_ctx *ctx, size_t bytes);

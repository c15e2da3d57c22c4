/* tensor.h: N-d float32 tensors (up to 4 dims, strided views), and the context that owns their memory.
 *
 * Memory: parameters live in the context's persistent storage until qb_ctx_free; activations, graph nodes
 * and activation gradients live in arenas that qb_ctx_step_reset makes reusable each step.
 * Errors: a function that fails sets ctx->err and returns NULL; an op given a NULL input returns NULL,
 * so a forward pass can be written straight and checked once at the end.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "autograd/arena.h"
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
} qb_tensor;

typedef struct qb_param_list {
    qb_tensor **items;
    int n, cap;
    float *block_data, *block_grad;  /* after qb_params_pack: every parameter and gradient, contiguous (else NULL) */
    int64_t block_numel;             /* floats in each block (parameters padded to 16 floats) */
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
    void *cuda;              /* backend state when device == QB_CUDA */
    qb_profile profile;      /* per-op timings when profile.on */
} qb_ctx;

/* Creates a context on a device with an RNG seed; NULL when the device is unavailable (message in err). */
qb_ctx *qb_ctx_new(qb_device device, uint64_t seed, qb_err *err);
/* Frees the context, its parameters and arenas. */
void qb_ctx_free(qb_ctx *ctx);
/* Starts a new step: clears the tape, the error and all activation memory (parameters are kept). */
int qb_ctx_step_reset(qb_ctx *ctx);
/* Returns true (and leaves ctx->err set) when an error happened since the last reset. */
static inline bool qb_ctx_failed(const qb_ctx *ctx) { return ctx->err.failed != 0; }

/* A new activation tensor (contiguous, uninitialised) in the step arena. */
qb_tensor *qb_new(qb_ctx *ctx, int ndim, const int64_t *shape);
/* A new activation tensor filled with zeros. */
qb_tensor *qb_zeros(qb_ctx *ctx, int ndim, const int64_t *shape);
/* A new activation tensor holding a copy of host data (n = numel floats). */
qb_tensor *qb_from_host(qb_ctx *ctx, int ndim, const int64_t *shape, const float *host);
/* A persistent parameter with a zeroed gradient; requires_grad set. name is copied. */
qb_tensor *qb_param_new(qb_ctx *ctx, const char *name, int ndim, const int64_t *shape);
/* Moves every parameter and its gradient into one block each (llm.c's single parameter buffer), so that one
 * all-reduce, optimizer pass or checkpoint write covers them all; values are kept. Pointers into the old parameter
 * memory become invalid. Parameters created later get their own memory until the next pack. */
int qb_params_pack(qb_ctx *ctx);
/* Finds a parameter by name, or NULL. */
qb_tensor *qb_param_find(qb_ctx *ctx, const char *name);
/* Sets every parameter gradient to zero. */
void qb_zero_grad(qb_ctx *ctx);

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
/* Fills a contiguous tensor with a constant. */
int qb_fill(qb_ctx *ctx, qb_tensor *t, float value);
/* Fills a contiguous tensor with N(mean, std) from the context RNG. */
int qb_fill_normal(qb_ctx *ctx, qb_tensor *t, float mean, float std);

/* Allocates `bytes` of step memory on the context device (for ops' saved buffers). */
void *qb_act_alloc(qb_ctx *ctx, size_t bytes);
/* Allocates `bytes` of step memory on the host. */
void *qb_meta_alloc(qb_ctx *ctx, size_t bytes);

/* weight_cache.h: weights fake-quantized once and kept across forwards (quant.weight_cache). Registered (weight,
 * quantizer) pairs whose quantizer is a plain fake quantizer (on, not calibrating, host amax values >= 0, not learned,
 * signed) are fake-quantized together by one kernel call over the parameter block (qb_qk_fake_quant_block) into a
 * persistent block of the context's device. The block is rebuilt before use when the parameters changed
 * (ctx->params.version), when an amax value, a quantizer's switches or numerics, the precision or the device changed;
 * learned ranges (PACT, LSQ) and dynamic amax are never cached (their quantizers run in every forward). The build also
 * flags the rows (output channels) that hold a clipped weight, for the backward's mask. */
#pragma once
#include "autograd/autograd.h"
#include "quant/quant_kernels.h"
#include "quant/tensor_quantizer.h"

typedef struct qb_weight_cache_item {
    qb_tensor *w;                /* a parameter (a view of the packed block) */
    const tensor_quantizer *q;   /* its weight quantizer */
} qb_weight_cache_item;

typedef struct qb_weight_cache {
    qb_weight_cache_item *items; /* [n] registered pairs */
    qb_fq_segment *seg;          /* [n] item i's segment when built (outer 0: not cached) */
    int n, cap;
    qb_fq_segment *seg_dev;      /* [n_seg] device memory: the cached items' segments */
    int n_seg;
    float *amax, *amax_dev;      /* [n_amax] the amax values the block was built from (host, device) */
    int64_t n_amax, cap_amax;
    float *block;                /* [block_numel] device memory: the fake-quantized weights */
    int64_t block_numel, max_numel;
    uint8_t *clipped_dev;        /* [n_clipped] device memory: per row of each cached weight's view, 1 when an element
                                  * fails |w| <= amax (its STE mask is not the identity there) */
    int64_t n_clipped;
    int64_t cap_block, cap_seg_dev, cap_amax_dev, cap_clipped_dev; /* device buffer capacities (elements) */
    bool built;
    uint64_t version;            /* ctx->params.version when built */
    qb_precision precision;
    const qb_kernels *k;         /* the device the memory belongs to */
    qb_dev *dev;
    int64_t builds;              /* rebuilds so far (tests, profiles) */
} qb_weight_cache;

/* Registers w with its quantizer q; 0, or -1 with err set (out of memory). */
int qb_weight_cache_add(qb_weight_cache *c, qb_tensor *w, const tensor_quantizer *q, qb_err *err);
/* Frees the cache's memory. */
void qb_weight_cache_free(qb_weight_cache *c);
/* Rebuilds the block when it is stale (see the top); 0, or -1 with ctx->err set. */
int qb_weight_cache_refresh(qb_ctx *ctx, qb_weight_cache *c);
/* w through q from the cache (rebuilt first when stale): the fake-quantized weight, recorded with fake_quant's clipped
 * STE backward into w.grad (mask from w and amax; the first writer of a w.grad marked zero writes it straight there
 * and the mask is applied in place to the rows with clipped weights only: qb_fake_quant_precomputed). NULL without an
 * error when the pair is not cached (not registered or q not cacheable now: the caller applies q), NULL with ctx->err
 * set on failure. */
qb_tensor *qb_weight_cache_apply(qb_ctx *ctx, qb_weight_cache *c, qb_tensor *w, const tensor_quantizer *q);

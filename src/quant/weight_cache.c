/* weight_cache.c: see weight_cache.h. */
#include "quant/weight_cache.h"

#include <stdlib.h>
#include <string.h>
#include "quant/op_fake_quant.h"

#define BLOCK_ALIGN 16 /* floats: each cached weight starts on a 64-byte boundary */

int qb_weight_cache_add(qb_weight_cache *c, qb_tensor *w, const tensor_quantizer *q, qb_err *err) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        qb_weight_cache_item *items = realloc(c->items, (size_t)cap * sizeof *items);
        if (items) c->items = items;
        qb_fq_segment *seg = items ? realloc(c->seg, (size_t)cap * sizeof *seg) : NULL;
        if (!seg) return qb_errorf(err, "weight cache: out of memory for %d weights", cap);
        c->seg = seg;
        c->cap = cap;
    }
    c->items[c->n] = (qb_weight_cache_item){w, q};
    c->seg[c->n++] = (qb_fq_segment){0};
    c->built = false;
    return 0;
}

static void release(qb_weight_cache *c, void *p) {
    if (p) c->k->release(c->dev, p);
}

/* The device memory (a device change drops it). */
static void release_device(qb_weight_cache *c) {
    if (c->k) {
        release(c, c->seg_dev);
        release(c, c->amax_dev);
        release(c, c->block);
        release(c, c->clipped_dev);
    }
    c->seg_dev = NULL;
    c->amax_dev = c->block = NULL;
    c->clipped_dev = NULL;
    c->cap_block = c->cap_seg_dev = c->cap_amax_dev = c->cap_clipped_dev = 0;
    c->n_seg = 0;
    c->built = false;
}

void qb_weight_cache_free(qb_weight_cache *c) {
    release_device(c);
    free(c->items);
    free(c->seg);
    free(c->amax);
    memset(c, 0, sizeof *c);
}

/* Item i's segment as q is now (src_off, view, levels; dst_off, amax_off and clip_off left 0), or outer 0 when q is not
 * a plain fake quantizer of w (then q runs as usual and reports its own errors). A per-tensor view is [rows of w, 1,
 * columns], so that its clipped flags are per row too (the same elements either way). */
static qb_fq_segment segment_of(const qb_ctx *ctx, const qb_weight_cache_item *it) {
    const tensor_quantizer *q = it->q;
    const quant_desc *d = &q->desc;
    qb_fq_segment s = {0};
    qb_err scratch = {0};
    int64_t first, last;
    if (q->disabled || !q->quant_on || q->calib_on || !q->amax || q->learned_amax || d->amax_mode == QUANT_AMAX_LEARNABLE ||
        d->amax_mode == QUANT_AMAX_LSQ || d->is_unsigned || quant_desc_validate(d, &scratch) || quant_desc_check_ndim(d, it->w->ndim, &scratch) ||
        !qb_is_contiguous(it->w) || !qb_params_block_span(ctx, it->w, &first, &last) || last - first + 1 != qb_numel(it->w))
        return s;
    for (int64_t k = 0; k < q->n_amax; k++)
        if (!(q->amax[k] >= 0.0f)) return s;
    int64_t outer, channels, inner;
    qb_channel_view(it->w->ndim, it->w->shape, q->n_amax == 1 ? -1 : d->axis, &outer, &channels, &inner);
    if (channels != q->n_amax || outer * channels * inner == 0) return s;
    if (channels == 1 && it->w->ndim > 1) {
        outer = it->w->shape[0];
        inner = qb_numel(it->w) / outer;
    }
    return (qb_fq_segment){.src_off = first, .outer = outer, .channels = channels, .inner = inner, .qmin = quant_desc_qmin(d),
                           .qmax = quant_desc_bound(d)};
}

static bool same_view(const qb_fq_segment *a, const qb_fq_segment *b) {
    return a->src_off == b->src_off && a->outer == b->outer && a->channels == b->channels && a->inner == b->inner && a->qmin == b->qmin &&
           a->qmax == b->qmax;
}

/* True when item i would be built as it was: same segment and, when cached, the same amax values (bit for bit). */
static bool item_current(const qb_ctx *ctx, const qb_weight_cache *c, int i) {
    qb_fq_segment now = segment_of(ctx, &c->items[i]);
    const qb_fq_segment *was = &c->seg[i];
    if (!same_view(&now, was)) return false;
    return now.outer == 0 || memcmp(c->amax + was->amax_off, c->items[i].q->amax, (size_t)was->channels * sizeof(float)) == 0;
}

static bool cache_current(const qb_ctx *ctx, const qb_weight_cache *c) {
    return c->built && c->k == ctx->k && c->dev == ctx->dev && c->version == ctx->params.version && c->precision == ctx->precision;
}

/* Grows device buffer *p (capacity *cap elements of elem bytes) to at least want elements; contents are dropped. */
static int reserve(qb_ctx *ctx, qb_weight_cache *c, void **p, int64_t *cap, int64_t want, size_t elem) {
    if (*p && *cap >= want) return 0;
    release(c, *p);
    *p = qb_device_alloc(ctx, (size_t)(want > 0 ? want : 1) * elem);
    *cap = *p ? want : 0;
    return *p ? 0 : qb_err_context(&ctx->err, "weight cache");
}

static int build(qb_ctx *ctx, qb_weight_cache *c) {
    if (c->k != ctx->k || c->dev != ctx->dev) release_device(c);
    c->k = ctx->k;
    c->dev = ctx->dev;
    c->built = false;
    int64_t at = 0, n_amax = 0, n_clipped = 0, max_numel = 0;
    int n_seg = 0;
    for (int i = 0; i < c->n; i++) {
        qb_fq_segment s = segment_of(ctx, &c->items[i]);
        if (s.outer) {
            int64_t numel = s.outer * s.channels * s.inner;
            s.dst_off = at;
            s.amax_off = n_amax;
            s.clip_off = n_clipped;
            at += (numel + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
            n_amax += s.channels;
            n_clipped += s.outer * s.channels;
            max_numel = numel > max_numel ? numel : max_numel;
            n_seg++;
        }
        c->seg[i] = s;
    }
    if (n_amax > c->cap_amax) {
        float *a = realloc(c->amax, (size_t)n_amax * sizeof *a);
        if (!a) return qb_errorf(&ctx->err, "weight cache: out of memory for %lld amax values", (long long)n_amax);
        c->amax = a;
        c->cap_amax = n_amax;
    }
    qb_fq_segment *dense = malloc((size_t)(n_seg ? n_seg : 1) * sizeof *dense);
    if (!dense) return qb_errorf(&ctx->err, "weight cache: out of memory for %d segments", n_seg);
    for (int i = 0, k = 0; i < c->n; i++)
        if (c->seg[i].outer) {
            memcpy(c->amax + c->seg[i].amax_off, c->items[i].q->amax, (size_t)c->seg[i].channels * sizeof(float));
            dense[k++] = c->seg[i];
        }
    int rc = reserve(ctx, c, (void **)&c->block, &c->cap_block, at, sizeof(float)) ||
             reserve(ctx, c, (void **)&c->seg_dev, &c->cap_seg_dev, n_seg, sizeof *dense) ||
             reserve(ctx, c, (void **)&c->amax_dev, &c->cap_amax_dev, n_amax, sizeof(float)) ||
             reserve(ctx, c, (void **)&c->clipped_dev, &c->cap_clipped_dev, n_clipped, 1);
    if (!rc && n_seg) {
        qb_quant_exec ex = qb_quant_exec_of(ctx);
        rc = qb_upload(ctx, c->seg_dev, dense, (size_t)n_seg * sizeof *dense) ||
             qb_upload(ctx, c->amax_dev, c->amax, (size_t)n_amax * sizeof(float)) ||
             QB_QKERNEL(&ctx->err, &ex, "weight cache", fake_quant_block, c->block, ctx->params.block_data, c->amax_dev, c->seg_dev, n_seg,
                        max_numel, c->clipped_dev, n_clipped);
    }
    free(dense);
    if (rc) return -1;
    c->n_seg = n_seg;
    c->n_amax = n_amax;
    c->n_clipped = n_clipped;
    c->block_numel = at;
    c->max_numel = max_numel;
    c->version = ctx->params.version;
    c->precision = ctx->precision;
    c->built = true;
    c->builds++;
    return 0;
}

int qb_weight_cache_refresh(qb_ctx *ctx, qb_weight_cache *c) {
    if (qb_ctx_failed(ctx)) return -1;
    bool current = cache_current(ctx, c);
    for (int i = 0; current && i < c->n; i++) current = item_current(ctx, c, i);
    return current ? 0 : build(ctx, c);
}

qb_tensor *qb_weight_cache_apply(qb_ctx *ctx, qb_weight_cache *c, qb_tensor *w, const tensor_quantizer *q) {
    if (qb_ctx_failed(ctx) || !w) return NULL;
    int i = 0;
    while (i < c->n && (c->items[i].w != w || c->items[i].q != q)) i++;
    if (i == c->n) return NULL;
    if ((!cache_current(ctx, c) || !item_current(ctx, c, i)) && qb_weight_cache_refresh(ctx, c)) return NULL;
    const qb_fq_segment *s = &c->seg[i];
    if (!s->outer) return NULL;
    qb_tensor *y = qb_fake_quant_precomputed(ctx, w, c->block + s->dst_off, c->amax_dev + s->amax_off, s->outer, s->channels, s->inner,
                                             c->clipped_dev + s->clip_off);
    if (!y) qb_err_context(&ctx->err, "quantizer %s", q->name);
    return y;
}

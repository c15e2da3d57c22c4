/* graph.c: see graph.h. */
#include "autograd/graph.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int profile_slot(qb_profile *p, const char *op) {
    for (int i = 0; i < p->n; i++)
        if (p->op[i] == op || strcmp(p->op[i], op) == 0) return i;
    if (p->n == QB_PROFILE_MAX_OPS) return QB_PROFILE_MAX_OPS - 1;
    p->op[p->n] = op;
    return p->n++;
}

void qb_profile_start(qb_ctx *ctx) {
    memset(&ctx->profile, 0, sizeof ctx->profile);
    ctx->profile.on = true;
    ctx->profile.mark = now_s();
}

void qb_profile_report(qb_ctx *ctx, FILE *out) {
    qb_profile *p = &ctx->profile;
    double total = 0;
    int order[QB_PROFILE_MAX_OPS];
    for (int i = 0; i < p->n; i++) {
        total += p->fwd_s[i] + p->bwd_s[i];
        order[i] = i;
    }
    for (int i = 1; i < p->n; i++)  /* insertion sort by total time, largest first */
        for (int j = i; j > 0 && p->fwd_s[order[j]] + p->bwd_s[order[j]] > p->fwd_s[order[j - 1]] + p->bwd_s[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(out, "%-18s %8s %10s %10s %7s\n", "op", "calls", "fwd ms", "bwd ms", "share");
    for (int k = 0; k < p->n; k++) {
        int i = order[k];
        fprintf(out, "%-18s %8lld %10.1f %10.1f %6.1f%%\n", p->op[i], (long long)p->calls[i], 1e3 * p->fwd_s[i], 1e3 * p->bwd_s[i],
                total > 0 ? 100.0 * (p->fwd_s[i] + p->bwd_s[i]) / total : 0.0);
    }
    p->on = false;
}

bool qb_needs_grad(const qb_ctx *ctx, qb_tensor *const *in, int n_in) {
    if (ctx->no_grad) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

qb_node *qb_record(qb_ctx *ctx, const char *op, qb_backward_fn backward, qb_tensor *out,
                   qb_tensor *const *in, int n_in) {
    if (!out || !qb_needs_grad(ctx, in, n_in)) return NULL;
    if (ctx->n_tape == ctx->cap_tape) {
        int nc = ctx->cap_tape ? 2 * ctx->cap_tape : 1024;
        qb_node **nt = realloc(ctx->tape, (size_t)nc * sizeof *nt);
        if (!nt) {
            qb_errorf(&ctx->err, "%s: out of memory growing the tape", op);
            return NULL;
        }
        ctx->tape = nt;
        ctx->cap_tape = nc;
    }
    qb_node *n = qb_meta_alloc(ctx, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = backward;
    n->out = out;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    out->node = n;
    out->requires_grad = true;
    ctx->tape[ctx->n_tape++] = n;
    if (ctx->profile.on) {  /* the op ran just before it is recorded: charge it the time since the last record */
        double t = now_s();
        int i = profile_slot(&ctx->profile, op);
        ctx->profile.fwd_s[i] += t - ctx->profile.mark;
        ctx->profile.calls[i]++;
        ctx->profile.mark = t;
    }
    return n;
}

/* Clears parameter p's zero mark: its gradient is being written. */
static void unmark_zero(qb_ctx *ctx, qb_tensor *p) {
    p->grad_zero = false;
    ctx->params.n_grad_zero--;
}

qb_tensor *qb_grad(qb_ctx *ctx, qb_tensor *t) {
    if (t->is_param && t->grad_zero) {
        if (qb_fill(ctx, t->grad, 0.0f)) return NULL;
        unmark_zero(ctx, t);
    }
    if (!t->grad) t->grad = qb_zeros(ctx, t->ndim, t->shape);
    return t->grad;
}

/* True when node is the only tape node with p among its inputs. */
static bool only_consumer(const qb_ctx *ctx, const qb_node *node, const qb_tensor *p) {
    for (int k = 0; k < ctx->n_tape; k++)
        for (int j = 0; ctx->tape[k] != node && j < ctx->tape[k]->n_in; j++)
            if (ctx->tape[k]->in[j] == p) return false;
    return true;
}

qb_tensor *qb_grad_for_write(qb_ctx *ctx, qb_tensor *t, bool *fresh) {
    qb_tensor *p = t->grad_alias;
    if (t->is_param && t->grad_zero) {
        unmark_zero(ctx, t);
        *fresh = true;
        return t->grad;
    }
    if (!t->grad && p && p->is_param && p->grad_zero && t->node && t->node->n_in == 1 && t->node->in[0] == p && qb_is_contiguous(t) &&
        qb_numel(t) == qb_numel(p) && only_consumer(ctx, t->node, p)) {
        unmark_zero(ctx, p);
        t->grad = p->grad;
        *fresh = true;
        return t->grad;
    }
    *fresh = t->grad == NULL;
    if (*fresh) t->grad = qb_new(ctx, t->ndim, t->shape);
    return t->grad;
}

qb_tensor *qb_grad_reuse(qb_ctx *ctx, qb_tensor *in, qb_tensor *out, bool *overwrite) {
    *overwrite = false;
    if (in->grad || in->is_param || out->grad_given || !out->grad || qb_numel(in) != qb_numel(out) || in->device != out->device)
        return qb_grad(ctx, in);
    qb_tensor *g = qb_meta_alloc(ctx, sizeof *g);
    if (!g) return NULL;
    *g = *out->grad;
    g->bf16 = NULL;
    g->owns_data = g->gemm_input = false;
    g->ndim = in->ndim;
    for (int d = 0; d < in->ndim; d++) g->shape[d] = in->shape[d];
    qb_set_contiguous_strides(g);
    out->grad_given = true;
    in->grad = g;
    *overwrite = true;
    return g;
}

static int run_backward(qb_ctx *ctx) {
    for (int k = ctx->n_tape - 1; k >= 0; k--) {
        qb_node *n = ctx->tape[k];
        if (n->out->grad) { /* else it does not reach the loss */
            double t0 = ctx->profile.on ? now_s() : 0.0;
            n->backward(ctx, n);
            if (ctx->profile.on) ctx->profile.bwd_s[profile_slot(&ctx->profile, n->op)] += now_s() - t0;
            if (qb_ctx_failed(ctx)) return qb_err_context(&ctx->err, "backward of %s", n->op);
        }
        if (ctx->backward_hook && ctx->backward_hook(ctx, k, ctx->backward_user)) return -1;
    }
    return qb_zero_grad_flush(ctx);
}

int qb_backward(qb_ctx *ctx, qb_tensor *loss) {
    if (!loss || qb_ctx_failed(ctx)) return -1;
    if (qb_numel(loss) != 1) {
        char s[64];
        return qb_errorf(&ctx->err, "backward: loss must have one element, got shape %s", qb_shape_str(loss, s, sizeof s));
    }
    if (!loss->requires_grad) return qb_errorf(&ctx->err, "backward: loss does not require grad (no-grad mode, or no parameter involved)");
    qb_tensor *g = qb_grad(ctx, loss);
    if (!g || qb_fill(ctx, g, 1.0f)) return -1;
    return run_backward(ctx);
}

int qb_backward_with_grad(qb_ctx *ctx, qb_tensor *out, const float *host_grad) {
    if (!out || qb_ctx_failed(ctx)) return -1;
    if (!out->requires_grad) return qb_errorf(&ctx->err, "backward: tensor does not require grad");
    qb_tensor *g = qb_grad(ctx, out);
    if (!g || qb_copy_from_host(ctx, g, host_grad)) return -1;
    return run_backward(ctx);
}

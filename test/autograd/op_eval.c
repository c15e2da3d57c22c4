/* op_eval.c: see op_eval.h. */
#include "op_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t op_case_numel(const op_case *c, int i) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim[i]; d++) n *= c->shape[i][d];
    return n;
}

int op_eval(qb_ctx *ctx, const op_case *c, float *const *host_in, const op_case_aux *aux, const float *upstream,
            op_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (qb_ctx_step_reset(ctx)) return -1;
    ctx->rng_counter = 0;
    ctx->training = c->training;
    ctx->no_grad = upstream == NULL;
    qb_tensor *in[OP_CASE_MAX_IN] = {NULL};
    for (int i = 0; i < c->n_in; i++) {
        in[i] = qb_from_host(ctx, c->ndim[i], c->shape[i], host_in[i]);
        if (!in[i]) return -1;
        in[i]->requires_grad = upstream && c->differentiable[i];
    }
    qb_tensor *out = c->forward(ctx, in, aux);
    if (!out) return -1;
    r->out_n = qb_numel(out);
    r->out_ndim = out->ndim;
    memcpy(r->out_shape, out->shape, sizeof r->out_shape);
    r->out = malloc((size_t)(r->out_n ? r->out_n : 1) * sizeof(float));
    if (!r->out || qb_to_host(ctx, out, r->out)) return -1;
    if (!upstream) return 0;
    if (qb_backward_with_grad(ctx, out, upstream)) return -1;
    for (int i = 0; i < c->n_in; i++) {
        if (!c->differentiable[i]) continue;
        int64_t n = op_case_numel(c, i);
        r->grads[i] = calloc((size_t)(n ? n : 1), sizeof(float));
        if (!r->grads[i]) return -1;
        if (in[i]->grad && qb_to_host(ctx, in[i]->grad, r->grads[i])) return -1;
    }
    return 0;
}

void op_eval_result_free(op_eval_result *r) {
    free(r->out);
    for (int i = 0; i < OP_CASE_MAX_IN; i++) free(r->grads[i]);
    memset(r, 0, sizeof *r);
}

void op_case_fill_inputs(const op_case *c, float **in, uint64_t seed) {
    for (int i = 0; i < c->n_in; i++) {
        int64_t n = op_case_numel(c, i);
        qb_rng_normal(in[i], n, 0.0f, 1.0f, seed, 1000u * (uint64_t)i);
        if (c->kinked)
            for (int64_t k = 0; k < n; k++) in[i][k] = in[i][k] >= 0 ? in[i][k] + 0.1f : in[i][k] - 0.1f;
        if (!c->differentiable[i]) {
            if (strcmp(c->name, "softmax_masked") == 0)  /* additive mask: keep or drop each key */
                for (int64_t k = 0; k < n; k++) in[i][k] = (k % 5 >= 3 && k / 5 == 0) ? -1e9f : 0.0f;
            else  /* bce targets in [0, 1] */
                for (int64_t k = 0; k < n; k++) in[i][k] = 0.5f + 0.5f * tanhf(in[i][k]);
        }
    }
}

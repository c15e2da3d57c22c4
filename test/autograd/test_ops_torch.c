/* test_ops_torch.c: op outputs and input gradients against PyTorch (fixture from test/ref/gen_autograd_fixtures.py).
 * Tolerance: |ours - torch| <= 2e-5 + 1e-4 |torch| elementwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "op_eval.h"

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/autograd/fixtures/ops_torch.json", &err);
    if (!root) qb_die("test_ops_torch", &err);
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
    if (!ctx) qb_die("test_ops_torch", &err);
    const char *name;
    json_t *cs;
    int n_cases = 0;
    json_object_foreach(json_object_get(root, "cases"), name, cs) {
        const op_case *c = op_case_find(name);
        if (!CHECK(&chk, c != NULL, "fixture case %s has no C op case", name)) continue;
        n_cases++;
        json_t *inputs = json_object_get(cs, "inputs"), *grads = json_object_get(cs, "grads");
        float *in[OP_CASE_MAX_IN] = {NULL};
        bool shapes_ok = (int)json_array_size(inputs) == c->n_in;
        for (int i = 0; shapes_ok && i < c->n_in; i++) {
            int nd;
            int64_t shape[4], n;
            in[i] = qb_fixture_tensor(json_array_get(inputs, (size_t)i), &nd, shape, &n);
            shapes_ok = in[i] && nd == c->ndim[i] && memcmp(shape, c->shape[i], (size_t)nd * sizeof(int64_t)) == 0;
        }
        if (!CHECK(&chk, shapes_ok, "%s: fixture inputs do not match the C case shapes", name)) continue;
        op_case_aux aux = op_case_default_aux(c);
        int32_t *ints = NULL;
        json_t *ji = json_object_get(cs, "ints");
        if (ji) {
            ints = qb_fixture_ints(ji, &aux.n_ints);
            aux.ints = ints;
        }
        int nd;
        int64_t shape[4], n_out, n_up;
        float *want = qb_fixture_tensor(json_object_get(cs, "output"), &nd, shape, &n_out);
        float *up = qb_fixture_tensor(json_object_get(cs, "upstream"), &nd, shape, &n_up);
        op_eval_result r;
        if (!CHECK(&chk, op_eval(ctx, c, in, &aux, up, &r) == 0, "%s: %s", name, ctx->err.msg)) continue;
        char what[128];
        snprintf(what, sizeof what, "%s output", name);
        if (CHECK(&chk, r.out_n == n_out, "%s: output has %ld elements, torch %ld", name, (long)r.out_n, (long)n_out))
            qb_check_close(&chk, what, r.out, want, n_out, 2e-5, 1e-4);
        for (int i = 0; i < c->n_in; i++) {
            if (!c->differentiable[i]) continue;
            int64_t ng;
            float *gw = qb_fixture_tensor(json_array_get(grads, (size_t)i), &nd, shape, &ng);
            snprintf(what, sizeof what, "%s grad of input %d", name, i);
            qb_check_close(&chk, what, r.grads[i], gw, ng, 2e-5, 1e-4);
            free(gw);
        }
        op_eval_result_free(&r);
        free(want);
        free(up);
        free(ints);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
    }
    CHECK(&chk, n_cases >= 30, "only %d fixture cases", n_cases);
    json_decref(root);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "autograd vs torch");
}

/* test_adamw.c: AdamW against torch.optim.AdamW over 5 steps (weight decay on "layer.weight", none on
 * "layer.bias"); tolerance 1e-6 absolute. The moments are one block each in the parameter block's layout. */
#include <stdlib.h>
#include "autograd/autograd.h"
#include "check.h"
#include "fixture.h"
#include "train/optim_adamw.h"

static void load(json_t *arr, float *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = (float)json_number_value(json_array_get(arr, (size_t)i));
}

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/train/fixtures/adamw_torch.json", &err);
    qb_ctx *ctx = root ? qb_ctx_new(QB_CPU, 1, &err) : NULL;
    if (!ctx) qb_die("test_adamw", &err);
    qb_tensor *w = qb_param_new(ctx, "layer.weight", 2, (int64_t[]){4, 6});
    qb_tensor *b = qb_param_new(ctx, "layer.bias", 1, (int64_t[]){6});
    load(json_object_get(root, "w0"), w->data, 24);
    load(json_object_get(root, "b0"), b->data, 6);
    qb_adamw opt;
    if (qb_adamw_init(&opt, ctx, 0.9, 0.999, 1e-8, 0.01, &err)) qb_die("test_adamw", &err);
    CHECK(&chk, opt.decay[0] && !opt.decay[1], "weight decays, bias does not");
    CHECK(&chk, w->data == ctx->params.block_data && b->data == ctx->params.block_data + 32 && opt.numel == 48 &&
                    qb_adamw_moment(&opt, 1, false) == opt.m + 32 && qb_adamw_moment(&opt, 1, true) == opt.v + 32,
          "parameters packed; each moment one block in the parameters' layout");
    json_t *steps = json_object_get(root, "steps");
    for (size_t s = 0; s < json_array_size(steps); s++) {
        json_t *st = json_array_get(steps, s);
        float want_w[24], want_b[6];
        load(json_object_get(st, "grad_w"), w->grad->data, 24);
        load(json_object_get(st, "grad_b"), b->grad->data, 6);
        load(json_object_get(st, "w"), want_w, 24);
        load(json_object_get(st, "b"), want_b, 6);
        qb_adamw_step(&opt, ctx, (float)json_number_value(json_object_get(st, "lr")));
        char what[64];
        snprintf(what, sizeof what, "step %zu weight", s + 1);
        qb_check_close(&chk, what, w->data, want_w, 24, 1e-6, 0);
        snprintf(what, sizeof what, "step %zu bias", s + 1);
        qb_check_close(&chk, what, b->data, want_b, 6, 1e-6, 0);
    }
    qb_adamw_free(&opt);
    qb_ctx_free(ctx);
    json_decref(root);
    return qb_check_finish(&chk, "adamw vs torch");
}

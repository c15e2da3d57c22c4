/* test_clip_grad.c: global-norm gradient clipping against torch.nn.utils.clip_grad_norm_ (clipped, tiny gradients,
 * another max_norm, a large max_norm that leaves the gradients alone); parameters without requires_grad are skipped. */
#include <math.h>
#include <stdlib.h>
#include "autograd/autograd.h"
#include "check.h"
#include "fixture.h"
#include "train/clip_grad.h"

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/train/fixtures/lr_schedule_clip.json", &err);
    if (!root) qb_die("test_clip_grad", &err);
    json_t *clips = json_object_get(root, "clips");
    CHECK(&c, json_array_size(clips) == 4, "fixture has 4 cases");
    for (size_t i = 0; i < json_array_size(clips); i++) {
        json_t *cs = json_array_get(clips, i);
        qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
        if (!ctx) qb_die("test_clip_grad", &err);
        json_t *shapes = json_object_get(cs, "shapes"), *grads = json_object_get(cs, "grads"), *want = json_object_get(cs, "clipped");
        qb_tensor *p[4];
        for (size_t k = 0; k < json_array_size(shapes); k++) {
            json_t *sh = json_array_get(shapes, k);
            int64_t shape[2] = {json_integer_value(json_array_get(sh, 0)), json_integer_value(json_array_get(sh, 1))};
            char name[32];
            snprintf(name, sizeof name, "p%zu", k);
            p[k] = qb_param_new(ctx, name, (int)json_array_size(sh), shape);
            json_t *arr = json_array_get(grads, k);
            for (int64_t e = 0; e < qb_numel(p[k]); e++) p[k]->grad->data[e] = (float)json_number_value(json_array_get(arr, (size_t)e));
        }
        qb_tensor *frozen = qb_param_new(ctx, "frozen", 1, (int64_t[]){3});
        frozen->requires_grad = false;
        for (int e = 0; e < 3; e++) frozen->grad->data[e] = 1000.0f;
        double max_norm = json_number_value(json_object_get(cs, "max_norm"));
        double total = qb_clip_grad_norm(ctx, max_norm), want_total = json_number_value(json_object_get(cs, "total_norm"));
        CHECK(&c, fabs(total - want_total) <= 1e-6 * want_total, "case %zu: total norm %.9g vs torch %.9g", i, total, want_total);
        for (size_t k = 0; k < json_array_size(shapes); k++) {
            json_t *arr = json_array_get(want, k);
            int64_t n = qb_numel(p[k]);
            float *w = malloc((size_t)n * sizeof(float));
            for (int64_t e = 0; e < n; e++) w[e] = (float)json_number_value(json_array_get(arr, (size_t)e));
            char what[128];
            snprintf(what, sizeof what, "case %zu (max_norm %g) grad %zu", i, max_norm, k);
            qb_check_close(&c, what, p[k]->grad->data, w, n, 0.0, 1e-6);
            free(w);
        }
        CHECK(&c, frozen->grad->data[0] == 1000.0f, "parameter without requires_grad untouched");
        qb_ctx_free(ctx);
    }
    json_decref(root);
    return qb_check_finish(&c, "clip_grad_norm_ vs torch");
}

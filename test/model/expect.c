/* expect.c: see expect.h. */
#include "expect.h"
#include <stdio.h>
#include <stdlib.h>
#include "model/checkpoint.h"

float *expect_f32(qb_check *c, const qb_safetensors *f, const char *name, int64_t *n) {
    const qb_st_tensor *t = qb_st_find(f, name);
    if (!CHECK(c, t != NULL, "%s: no tensor %s", f->path, name)) return NULL;
    float *out = malloc((size_t)t->numel * sizeof(float) + 1);
    qb_err err = {0};
    if (!out || qb_st_read_f32(f, t, out, &err)) {
        CHECK(c, false, "%s", err.msg);
        free(out);
        return NULL;
    }
    if (n) *n = t->numel;
    return out;
}

int32_t *expect_i32(qb_check *c, const qb_safetensors *f, const char *name, int64_t *n) {
    const qb_st_tensor *t = qb_st_find(f, name);
    if (!CHECK(c, t != NULL, "%s: no tensor %s", f->path, name)) return NULL;
    int32_t *out = malloc((size_t)t->numel * sizeof(int32_t) + 1);
    qb_err err = {0};
    if (!out || qb_st_read_i32(f, t, out, &err)) {
        CHECK(c, false, "%s", err.msg);
        free(out);
        return NULL;
    }
    if (n) *n = t->numel;
    return out;
}

bool expect_close(qb_check *c, qb_ctx *ctx, const qb_tensor *t, const qb_safetensors *f, const char *name, double atol) {
    if (!CHECK(c, t != NULL, "%s: no output (%s)", name, ctx->err.msg)) return false;
    int64_t n = 0;
    float *want = expect_f32(c, f, name, &n);
    if (!want) return false;
    bool ok = CHECK(c, n == qb_numel(t), "%s: %ld values, want %ld", name, (long)qb_numel(t), (long)n);
    float *got = ok ? malloc((size_t)n * sizeof(float) + 1) : NULL;
    if (got && qb_to_host(ctx, t, got) == 0) ok = qb_check_close(c, name, got, want, n, atol, 0.0);
    free(got);
    free(want);
    return ok;
}

int expect_model(qb_bert_model *m, qb_ctx *ctx, const char *dir, qb_bert_head head, void (*edit)(qb_bert_config *), qb_err *err) {
    char path[4096];
    qb_bert_config cfg;
    snprintf(path, sizeof path, "%s/config.json", qb_test_path(dir));
    if (qb_bert_config_load(path, &cfg, err)) return -1;
    if (edit) edit(&cfg);
    if (qb_bert_init(m, ctx, &cfg, head, NULL)) return qb_errorf(err, "%s", ctx->err.msg);
    snprintf(path, sizeof path, "%s/model.safetensors", qb_test_path(dir));
    return qb_bert_load_safetensors(m, path, NULL, err);
}

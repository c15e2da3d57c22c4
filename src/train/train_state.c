/* train_state.c: see train_state.h. */
#include "train/train_state.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "base/json.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "text/tokenizer.h"
#include "train/qa_train.h"

const char *const qb_tokenizer_files[] = {"vocab.txt", "tokenizer.json", "special_tokens_map.json", NULL};
const char *const qb_model_unit_files[] = {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json",
                                           "train_results.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                           "special_tokens_map.json", NULL};

/* dst_dir/tokenizer_config.json for src_dir's tokenizer, model_max_length from dst_dir/config.json (written first). */
static int write_tokenizer_config(const char *src_dir, const char *dst_dir, qb_err *err) {
    char src[4096], dst[4096];
    qb_bert_config cfg;
    qb_tokenizer tok;
    snprintf(dst, sizeof dst, "%s/config.json", dst_dir);
    if (qb_bert_config_load(dst, &cfg, err) || qb_tokenizer_load(&tok, src_dir, err)) return -1;
    snprintf(src, sizeof src, "%s/tokenizer_config.json", src_dir);
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dst_dir);
    int rc = qb_tokenizer_save_config(&tok, src, cfg.max_position_embeddings, dst, err);
    qb_tokenizer_free(&tok);
    return rc;
}

int qb_copy_tokenizer_files(const char *src_dir, const char *dst_dir, qb_err *err) {
    if (strcmp(src_dir, dst_dir) == 0) return 0;
    int copied = 0;
    for (int i = 0; qb_tokenizer_files[i]; i++) {
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s/%s", src_dir, qb_tokenizer_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dst_dir, qb_tokenizer_files[i]);
        if (access(src, R_OK) != 0) continue;
        if (qb_copy_file(src, dst, err)) return -1;
        copied++;
    }
    return copied ? write_tokenizer_config(src_dir, dst_dir, err) : 0;
}

static int save_optimizer(const char *path, qb_ctx *ctx, const qb_adamw *opt, qb_err *err) {
    int n = opt->n < ctx->params.n ? opt->n : ctx->params.n;
    qb_st_entry *e = calloc((size_t)(2 * n) + 1, sizeof *e);
    char (*names)[300] = calloc((size_t)(2 * n) + 1, sizeof *names);
    float **host = calloc((size_t)(2 * n) + 1, sizeof *host);
    int rc = e && names && host ? 0 : qb_errorf(err, "%s: out of memory", path);
    for (int i = 0; !rc && i < n; i++) {
        const qb_tensor *p = ctx->params.items[i];
        for (int k = 0; !rc && k < 2; k++) {
            int j = 2 * i + k;
            size_t bytes = (size_t)qb_numel(p) * sizeof(float);
            host[j] = malloc(bytes + 1);
            if (!host[j]) rc = qb_errorf(err, "%s: out of memory", path);
            else if (qb_download(ctx, host[j], qb_adamw_moment(opt, i, k), bytes)) rc = qb_errorf(err, "%s: %s", path, ctx->err.msg);
            snprintf(names[j], sizeof names[j], "%s.%s", p->name, k ? "exp_avg_sq" : "exp_avg");
            e[j] = (qb_st_entry){.name = names[j], .ndim = p->ndim, .f32 = host[j]};
            for (int d = 0; d < p->ndim; d++) e[j].shape[d] = p->shape[d];
        }
    }
    if (!rc) rc = qb_st_write(path, e, 2 * n, err);
    for (int j = 0; host && j < 2 * n; j++) free(host[j]);
    free(host);
    free(names);
    free(e);
    return rc;
}

static int save_info(const char *path, const qb_train_state_info *s, qb_err *err) {
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "global_step", (json_int_t)s->global_step, "max_steps",
                          (json_int_t)s->max_steps, "seed", (json_int_t)s->seed, "train_batch_size", (json_int_t)s->train_batch_size,
                          "num_train_features", (json_int_t)s->num_train_features, "epoch", s->epoch);
    if (j && s->best_step > 0) {
        char best[64];
        snprintf(best, sizeof best, "checkpoint-%lld", (long long)s->best_step);
        json_object_set_new(j, "best_metric", json_real(s->best_metric));
        json_object_set_new(j, "best_global_step", json_integer((json_int_t)s->best_step));
        json_object_set_new(j, "best_model_checkpoint", json_string(best));
    }
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text) return qb_errorf(err, "%s: out of memory", path);
    int rc = qb_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

int qb_train_state_save(const char *dir, const qb_bert_model *m, const qb_adamw *opt, const qb_train_state_info *info, qb_err *err) {
    char path[4096];
    if (qb_bert_save_pretrained(m, dir, err)) return -1;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (save_optimizer(path, m->ctx, opt, err)) return -1;
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    return save_info(path, info, err);
}

static int get_int(json_t *root, const char *key, int64_t max, int64_t *out, const char *path, qb_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v) return qb_errorf(err, "%s: key %s: missing", path, key);
    return qb_json_int(v, 0, max, out, path, key, err);
}

static int load_info(const char *path, qb_train_state_info *s, qb_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (qb_read_file(path, &text, &len, err)) return -1;
    json_t *root = qb_json_loadb(text, len, path, err);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return root ? qb_errorf(err, "%s: not a JSON object", path) : -1;
    }
    memset(s, 0, sizeof *s);
    int rc = get_int(root, "global_step", QB_QA_MAX_STEPS, &s->global_step, path, err) ||
             get_int(root, "max_steps", QB_QA_MAX_STEPS, &s->max_steps, path, err) || get_int(root, "seed", INT64_MAX, &s->seed, path, err) ||
             get_int(root, "train_batch_size", 1 << 20, &s->train_batch_size, path, err) ||
             get_int(root, "num_train_features", (int64_t)1 << 40, &s->num_train_features, path, err) ? -1 : 0;
    json_t *epoch = json_object_get(root, "epoch");
    if (!rc && epoch && !json_is_number(epoch)) rc = qb_errorf(err, "%s: key epoch: expected a number, got %s", path, qb_json_kind(epoch));
    s->epoch = json_number_value(epoch);
    if (!rc && json_object_get(root, "best_global_step")) {
        rc = get_int(root, "best_global_step", QB_QA_MAX_STEPS, &s->best_step, path, err);
        json_t *bm = json_object_get(root, "best_metric");
        if (!rc && !json_is_number(bm)) rc = qb_errorf(err, "%s: key best_metric: not a number", path);
        s->best_metric = json_number_value(bm);
    }
    json_decref(root);
    return rc;
}

static int load_optimizer(const char *path, qb_ctx *ctx, qb_adamw *opt, qb_err *err) {
    qb_safetensors f;
    if (qb_st_open(&f, path, err)) return -1;
    int rc = 0;
    for (int i = 0; !rc && i < opt->n && i < ctx->params.n; i++) {
        const qb_tensor *p = ctx->params.items[i];
        size_t bytes = (size_t)qb_numel(p) * sizeof(float);
        float *buf = malloc(bytes + 1);
        if (!buf) rc = qb_errorf(err, "%s: out of memory", path);
        for (int k = 0; !rc && k < 2; k++) {
            char name[300];
            snprintf(name, sizeof name, "%s.%s", p->name, k ? "exp_avg_sq" : "exp_avg");
            const qb_st_tensor *t = qb_st_find(&f, name);
            if (!t) rc = qb_errorf(err, "%s: tensor %s missing", path, name);
            else if (t->numel != qb_numel(p)) rc = qb_errorf(err, "%s: tensor %s: %lld values, the parameter has %lld", path, name, (long long)t->numel, (long long)qb_numel(p));
            else rc = qb_st_read_f32(&f, t, buf, err);
            if (!rc) rc = qb_check_finite(buf, t->numel, path, name, "optimizer moments", err);
            if (!rc && qb_upload(ctx, qb_adamw_moment(opt, i, k), buf, bytes)) rc = qb_errorf(err, "%s: %s", path, ctx->err.msg);
        }
        free(buf);
    }
    qb_st_close(&f);
    return rc;
}

int qb_train_state_load(const char *dir, qb_ctx *ctx, qb_adamw *opt, qb_train_state_info *info, qb_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    if (load_info(path, info, err)) return -1;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (load_optimizer(path, ctx, opt, err)) return -1;
    opt->step = info->global_step;
    return 0;
}

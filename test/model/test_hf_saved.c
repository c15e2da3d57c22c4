/* test_hf_saved.c: a checkpoint written by transformers' save_pretrained (tokenizer_config.json with model_max_length
 * 1e30, tokenizer.json, config.json, model.safetensors) loads, encodes and answers as transformers does; saved again by
 * us (tokenizer_config.json with model_max_length = max_position_embeddings, config.json reals as written) it loads to
 * the same tokens and bit-identical outputs. Fixtures by test/ref/gen_hf_saved_tiny.py. With a directory argument the
 * saved checkpoint is kept there (test/model/check_hf_saved.py then loads it with transformers). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "check.h"
#include "expect.h"
#include "fixture.h"
#include "model/checkpoint.h"
#include "model/heads.h"
#include "text/pair_encoding.h"
#include "train/train_state.h"

#define FIXTURE "test/model/fixtures/hf_saved"
#define LOGIT_TOL 1e-5

typedef struct pairs {
    int B, S;
    int32_t *ids, *types, *mask;
} pairs;

static void pairs_free(pairs *p) {
    free(p->ids);
    free(p->types);
    free(p->mask);
}

/* [CLS] question [SEP] context [SEP] rows of max_length, padded, as transformers' tokenizer(q, c) encodes them. */
static int encode_pairs(const qb_tokenizer *t, json_t *texts, pairs *p, qb_err *err) {
    json_t *list = json_object_get(texts, "pairs");
    p->B = (int)json_array_size(list);
    p->S = (int)json_integer_value(json_object_get(texts, "max_length"));
    size_t n = (size_t)p->B * (size_t)p->S;
    p->ids = calloc(n, sizeof *p->ids);
    p->types = calloc(n, sizeof *p->types);
    p->mask = calloc(n, sizeof *p->mask);
    int32_t *offsets = calloc(2 * (size_t)p->S, sizeof *offsets);
    int8_t *seq = calloc((size_t)p->S, sizeof *seq);
    qb_tokens a = {0}, b = {0};
    int rc = p->ids && p->types && p->mask && offsets && seq && p->B > 0 && p->S > 0 ? 0 : qb_errorf(err, "bad texts or out of memory");
    for (int i = 0; !rc && i < p->B; i++) {
        const char *q = json_string_value(json_array_get(json_array_get(list, (size_t)i), 0));
        const char *ctx = json_string_value(json_array_get(json_array_get(list, (size_t)i), 1));
        qb_pair_windows w;
        rc = !q || !ctx ? qb_errorf(err, "pair %d: not two strings", i) : 0;
        rc = rc || qb_tokenize(t, q, strlen(q), &a, err) || qb_tokenize(t, ctx, strlen(ctx), &b, err) ||
             qb_pair_plan(a.n, b.n, p->S, 0, &w, err);
        if (!rc && w.count != 1) rc = qb_errorf(err, "pair %d: %lld windows, want 1", i, (long long)w.count);
        size_t row = (size_t)i * (size_t)p->S;
        if (!rc) qb_pair_fill(t, &a, a.n, &b, &w, 0, p->S, p->ids + row, p->types + row, p->mask + row, offsets, seq);
    }
    qb_tokens_free(&a);
    qb_tokens_free(&b);
    free(offsets);
    free(seq);
    return rc;
}

static bool same_ints(const int32_t *a, const int32_t *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

/* Loads dir's tokenizer and model; checks the encoding against transformers'; returns the QA logits (start then end). */
static float *run_checkpoint(qb_check *c, const char *dir, json_t *texts, const qb_safetensors *want, bool *lowercase,
                             int64_t *max_length) {
    qb_err err = {0};
    qb_tokenizer tok;
    if (!CHECK(c, qb_tokenizer_load(&tok, dir, &err) == 0, "%s: tokenizer: %s", dir, err.msg)) return NULL;
    *lowercase = tok.norm.lowercase && tok.norm.strip_accents && tok.norm.handle_chinese_chars;
    *max_length = tok.model_max_length;
    pairs p = {0};
    int64_t n = 0;
    bool encoded = CHECK(c, encode_pairs(&tok, texts, &p, &err) == 0, "%s: %s", dir, err.msg);
    qb_tokenizer_free(&tok);
    int32_t *ids = expect_i32(c, want, "in.input_ids", &n), *types = expect_i32(c, want, "in.token_type_ids", NULL),
            *mask = expect_i32(c, want, "in.attention_mask", NULL);
    bool same = encoded && ids && types && mask && n == (int64_t)p.B * p.S;
    CHECK(c, same && same_ints(p.ids, ids, n) && same_ints(p.types, types, n) && same_ints(p.mask, mask, n),
          "%s: %d pairs encode as transformers encodes them", dir, p.B);
    free(ids);
    free(types);
    free(mask);

    float *logits = NULL;
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    qb_bert_load_report rep = {0};
    if (encoded && CHECK(c, ctx && qb_bert_from_pretrained(&m, ctx, dir, QB_BERT_QUESTION_ANSWERING, NULL, &rep, &err) == 0,
                         "%s: model: %s", dir, err.msg)) {
        CHECK(c, rep.n_params == m.n_params && !rep.newly_initialized && !rep.unused, "%s: %d of %d parameters, new %s, unused %s",
              dir, rep.n_params, m.n_params, rep.newly_initialized ? rep.newly_initialized : "-", rep.unused ? rep.unused : "-");
        qb_bert_load_report_free(&rep);
        ctx->no_grad = true;
        qb_bert_batch b = {.batch = p.B, .seq = p.S, .input_ids = p.ids, .attention_mask = p.mask, .token_type_ids = p.types};
        qb_bert_output out;
        int64_t nl = (int64_t)p.B * p.S;
        if (CHECK(c, qb_bert_question_answering(&m, &b, NULL, NULL, &out) == 0, "%s: forward: %s", dir, ctx->err.msg) &&
            expect_close(c, ctx, out.logits, want, "qa.start_logits", LOGIT_TOL) &&
            expect_close(c, ctx, out.end_logits, want, "qa.end_logits", LOGIT_TOL) &&
            (logits = malloc(2 * (size_t)nl * sizeof *logits)) &&
            (qb_to_host(ctx, out.logits, logits) || qb_to_host(ctx, out.end_logits, logits + nl))) {
            free(logits);
            logits = NULL;
        }
        qb_bert_free(&m);
    }
    if (ctx) qb_ctx_free(ctx);
    pairs_free(&p);
    return logits;
}

static char *read_text(const char *path) {
    char *text = NULL;
    size_t len = 0;
    qb_err err = {0};
    return qb_read_file(path, &text, &len, &err) ? NULL : text;
}

/* Our tokenizer_config.json and config.json as transformers writes them. */
static void check_saved_files(qb_check *c, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_error_t je;
    json_t *tc = json_load_file(path, 0, &je);
    if (CHECK(c, json_is_object(tc), "%s: %s", path, je.text)) {
        CHECK(c, json_integer_value(json_object_get(tc, "model_max_length")) == 64, "model_max_length = max_position_embeddings 64");
        CHECK(c, json_is_true(json_object_get(tc, "do_lower_case")) && json_is_null(json_object_get(tc, "strip_accents")) &&
                     json_is_true(json_object_get(tc, "tokenize_chinese_chars")),
              "do_lower_case true, strip_accents null, tokenize_chinese_chars true");
        const char *keys[] = {"tokenizer_class", "unk_token", "cls_token", "sep_token", "pad_token", "mask_token", "backend"};
        const char *want[] = {"BertTokenizer", "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "tokenizers"};
        for (int i = 0; i < 7; i++) {
            const char *got = json_string_value(json_object_get(tc, keys[i]));
            CHECK(c, got && strcmp(got, want[i]) == 0, "tokenizer_config.json %s = %s (want %s)", keys[i], got ? got : "-", want[i]);
        }
    }
    json_decref(tc);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_text(path);
    const char *lines[] = {"\"layer_norm_eps\": 1e-12,", "\"hidden_dropout_prob\": 0.1,", "\"attention_probs_dropout_prob\": 0.1,",
                           "\"initializer_range\": 0.02,", "\"classifier_dropout\": 0.1,"};
    for (int i = 0; i < 5; i++) CHECK(c, text && strstr(text, lines[i]), "config.json has %s", lines[i]);
    size_t len = text ? strlen(text) : 0;
    CHECK(c, len > 2 && text[len - 2] == '}' && text[len - 1] == '\n', "config.json ends in a newline");
    free(text);
}

/* tokenizer.json says lowercase false but there is no tokenizer_config.json: BertTokenizer lowercases (its default). */
static void check_config_rules(qb_check *c, json_t *texts, const qb_safetensors *want) {
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/qb_hf_variant.%d", (int)getpid());
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    qb_err err = {0};
    json_error_t je;
    json_t *tj = json_load_file(qb_test_path(FIXTURE "/tokenizer.json"), 0, &je);
    json_object_set_new(json_object_get(tj, "normalizer"), "lowercase", json_false());
    qb_tokenizer tok;
    qb_tokens toks = {0};
    const char *text = json_string_value(json_object_get(texts, "cased_text"));
    int64_t n = 0;
    int32_t *ids = expect_i32(c, want, "variant.input_ids", &n);
    if (CHECK(c, tj && text && ids && qb_mkdir_p(dir, &err) == 0 && json_dump_file(tj, path, 0) == 0, "variant: %s", err.msg) &&
        CHECK(c, qb_tokenizer_load(&tok, dir, &err) == 0, "variant: %s", err.msg)) {
        CHECK(c, qb_tokenize(&tok, text, strlen(text), &toks, &err) == 0 && toks.n == n && same_ints(toks.ids, ids, n),
              "tokenizer.json lowercase false without tokenizer_config.json lowercases, as BertTokenizer does");
        qb_tokenizer_free(&tok);
    }
    qb_tokens_free(&toks);
    free(ids);
    json_decref(tj);
    unlink(path);
    rmdir(dir);
}

static void remove_checkpoint(const char *dir) {
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char path[4200];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv) {
    qb_check c = {0};
    qb_err err = {0};
    qb_safetensors want;
    json_t *texts = qb_fixture_load(FIXTURE "_texts.json", &err);
    if (!CHECK(&c, texts && qb_st_open(&want, qb_test_path(FIXTURE "_expected.safetensors"), &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "hf saved checkpoint");
    const char *fixture = qb_test_path(FIXTURE);
    char dir[4096];
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else snprintf(dir, sizeof dir, "/tmp/qb_hf_saved.%d", (int)getpid());

    bool lowercase = false;
    int64_t max_length = -1;
    float *first = run_checkpoint(&c, fixture, texts, &want, &lowercase, &max_length);
    CHECK(&c, lowercase && max_length == 0, "transformers' tokenizer_config.json: lowercase, model_max_length 1e30 read as no limit");

    /* saved by us, as qat-train calibrate saves: model, then the tokenizer files */
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    bool saved = CHECK(&c, ctx && qb_bert_from_pretrained(&m, ctx, fixture, QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err) == 0 &&
                               qb_bert_save_pretrained(&m, dir, &err) == 0 && qb_copy_tokenizer_files(fixture, dir, &err) == 0,
                       "save: %s", err.msg);
    if (ctx) {
        qb_bert_free(&m);
        qb_ctx_free(ctx);
    }
    if (saved) {
        check_saved_files(&c, dir);
        float *again = run_checkpoint(&c, dir, texts, &want, &lowercase, &max_length);
        CHECK(&c, lowercase && max_length == 64, "our tokenizer_config.json: lowercase, model_max_length %lld (want 64)", (long long)max_length);
        const qb_st_tensor *t = qb_st_find(&want, "qa.start_logits");
        CHECK(&c, t && first && again && memcmp(first, again, 2 * (size_t)t->numel * sizeof(float)) == 0,
              "saved checkpoint: outputs bit-identical");
        free(again);
    }
    free(first);
    check_config_rules(&c, texts, &want);
    if (argc <= 1) remove_checkpoint(dir);
    qb_st_close(&want);
    json_decref(texts);
    return qb_check_finish(&c, "hf saved checkpoint");
}

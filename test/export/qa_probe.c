/* qa_probe.c: test helper for the export checks (test_onnx_ort.sh): our forward's QA logits on real SQuAD dev
 * features, and the official EM/F1 of any logits on those features.
 *   qa_probe dump  EXPORT.h5 TOKENIZER_DIR DEV QUESTIONS SEQ STRIDE OUT.safetensors
 *       features of the first QUESTIONS dev questions (input_ids, attention_mask, token_type_ids I32 [n, SEQ]) and
 *       our start_logits / end_logits (F32 [n, SEQ]) from the model loaded from the HDF5 export
 *   qa_probe score TOKENIZER_DIR DEV QUESTIONS SEQ STRIDE LOGITS.safetensors
 *       EM/F1 of the start_logits / end_logits in the file (same features), then each question's F1 and EM */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export/hdf5_loader.h"
#include "model/safetensors.h"
#include "train/qa_evaluate.h"

static int features(const char *tok_dir, const char *dev, int questions, int seq, int stride, qb_squad_set *set, qb_tokenizer *tok,
                    qb_squad_features *f, qb_err *err) {
    memset(f, 0, sizeof *f);
    if (qb_tokenizer_load(tok, tok_dir, err) || qb_squad_read(dev, false, set, err)) return -1;
    qb_squad_keep_first(set, questions);
    qb_squad_feature_opts o = {.max_seq_length = seq, .doc_stride = stride};
    return qb_squad_features_build(tok, set, NULL, 0, &o, f, err);
}

static int score(const qb_squad_set *set, const qb_squad_features *f, const float *start, const float *end, qb_err *err) {
    qb_squad_postprocess_opts po = {.n_best_size = 20, .max_answer_length = 30};
    qb_squad_predictions p = {0};
    char **texts = calloc((size_t)set->n + 1, sizeof *texts);
    qb_squad_scores s;
    int *em = calloc((size_t)set->n + 1, sizeof *em);
    double *f1 = calloc((size_t)set->n + 1, sizeof *f1);
    int rc = texts && em && f1 ? qb_squad_postprocess(set, f, start, end, &po, &p, err) : -1;
    for (int64_t i = 0; !rc && i < p.n; i++) texts[p.p[i].example] = p.p[i].text;
    if (!rc) rc = qb_squad_evaluate_v1(set, texts, &s, em, f1, err);
    if (!rc) {
        printf("exact_match %.6f f1 %.6f questions %lld features %lld\nper_question_f1", s.exact, s.f1, (long long)set->n, (long long)f->n);
        for (int64_t i = 0; i < set->n; i++) printf(" %.6f", f1[i]);
        printf("\nper_question_em");
        for (int64_t i = 0; i < set->n; i++) printf(" %d", em[i]);
        printf("\n");
    }
    qb_squad_predictions_free(&p);
    free(texts);
    free(em);
    free(f1);
    return rc;
}

int main(int argc, char **argv) {
    qb_err err = {0};
    bool dump = argc == 9 && !strcmp(argv[1], "dump"), sc = argc == 8 && !strcmp(argv[1], "score");
    if (!dump && !sc) {
        fprintf(stderr, "usage: qa_probe dump EXPORT.h5 TOKENIZER_DIR DEV QUESTIONS SEQ STRIDE OUT.safetensors\n"
                        "       qa_probe score TOKENIZER_DIR DEV QUESTIONS SEQ STRIDE LOGITS.safetensors\n");
        return 2;
    }
    int a = dump ? 3 : 2;
    qb_squad_set set;
    qb_tokenizer tok;
    qb_squad_features f;
    if (features(argv[a], argv[a + 1], atoi(argv[a + 2]), atoi(argv[a + 3]), atoi(argv[a + 4]), &set, &tok, &f, &err))
        qb_die("qa_probe", &err);
    size_t cells = (size_t)f.n * (size_t)f.max_len;
    float *start = malloc(cells * sizeof(float)), *end = malloc(cells * sizeof(float));
    if (!start || !end) return 1;
    if (dump) {
        qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
        qb_bert_model m;
        if (!ctx || qb_hdf5_from_file(&m, ctx, argv[2], QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err) ||
            qb_qa_logits(&m, &f, 16, start, end, &err))
            qb_die("qa_probe", &err);
        qb_st_entry e[5] = {
            {.name = "input_ids", .ndim = 2, .shape = {f.n, f.max_len}, .i32 = f.input_ids},
            {.name = "attention_mask", .ndim = 2, .shape = {f.n, f.max_len}, .i32 = f.attention_mask},
            {.name = "token_type_ids", .ndim = 2, .shape = {f.n, f.max_len}, .i32 = f.token_type_ids},
            {.name = "start_logits", .ndim = 2, .shape = {f.n, f.max_len}, .f32 = start},
            {.name = "end_logits", .ndim = 2, .shape = {f.n, f.max_len}, .f32 = end},
        };
        if (qb_st_write(argv[8], e, 5, &err)) qb_die("qa_probe", &err);
        qb_bert_free(&m);
        qb_ctx_free(ctx);
    } else {
        qb_safetensors st;
        const qb_st_tensor *ts, *te;
        if (qb_st_open(&st, argv[7], &err)) qb_die("qa_probe", &err);
        if (!(ts = qb_st_find(&st, "start_logits")) || !(te = qb_st_find(&st, "end_logits")) || ts->numel != (int64_t)cells ||
            te->numel != (int64_t)cells) {
            fprintf(stderr, "qa_probe: %s: want start_logits and end_logits of %lld x %d\n", argv[7], (long long)f.n, f.max_len);
            return 1;
        }
        if (qb_st_read_f32(&st, ts, start, &err) || qb_st_read_f32(&st, te, end, &err)) qb_die("qa_probe", &err);
        qb_st_close(&st);
    }
    if (score(&set, &f, start, end, &err)) qb_die("qa_probe", &err);
    free(start);
    free(end);
    qb_squad_features_free(&f);
    qb_squad_free(&set);
    qb_tokenizer_free(&tok);
    return 0;
}

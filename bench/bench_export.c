/* bench_export.c: our fake-quant forward (the training graph, quantizers as exported) and our fp32 forward
 * (quantizers off) on the features of a qa_probe dump, in sequences per second; the peer is
 * bench/bench_export_ort.py (onnxruntime running our INT8 QDQ graph and the float graph on the same features and
 * threads). bench/bench_export.sh runs both.
 * Run: OMP_NUM_THREADS=2 ./build/bench/bench_export EXPORT.h5 FEATURES.safetensors [--batch B] [--reps R] */
#include "bench_util.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export/hdf5_loader.h"
#include "model/heads.h"
#include "model/safetensors.h"

static int32_t *read_i32(const qb_safetensors *f, const char *name, int64_t *rows, int64_t *cols, qb_err *err) {
    const qb_st_tensor *t = qb_st_find(f, name);
    if (!t || t->ndim != 2) return qb_errorf(err, "%s: no 2-d tensor %s", f->path, name), NULL;
    int32_t *v = malloc((size_t)t->numel * sizeof *v);
    if (!v || qb_st_read_i32(f, t, v, err)) return free(v), NULL;
    *rows = t->shape[0];
    *cols = t->shape[1];
    return v;
}

/* Median seconds of one pass over all features. */
static double pass(qb_bert_model *m, const int32_t *ids, const int32_t *mask, const int32_t *types, int64_t n, int64_t seq, int batch,
                   int reps) {
    double t[32];
    m->ctx->no_grad = true;
    m->ctx->training = false;
    for (int r = -1; r < reps; r++) { /* one warm-up pass */
        double t0 = bench_now();
        for (int64_t i = 0; i < n; i += batch) {
            int b = (int)(n - i < batch ? n - i : batch);
            qb_bert_batch in = {.batch = b, .seq = (int)seq, .input_ids = ids + i * seq, .attention_mask = mask + i * seq,
                                .token_type_ids = types + i * seq};
            qb_bert_output out;
            qb_ctx_step_reset(m->ctx);
            if (qb_bert_question_answering(m, &in, NULL, NULL, &out)) qb_die("bench_export", &m->ctx->err);
        }
        if (r >= 0) t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_export EXPORT.h5 FEATURES.safetensors [--batch B] [--reps R]\n");
        return 2;
    }
    int batch = 8, reps = 5;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (batch < 1) batch = 8;
    if (reps < 1 || reps > 32) reps = 5;
    qb_err err = {0};
    qb_safetensors f;
    int64_t n, seq, r2, c2;
    if (qb_st_open(&f, argv[2], &err)) qb_die("bench_export", &err);
    int32_t *ids = read_i32(&f, "input_ids", &n, &seq, &err), *mask = read_i32(&f, "attention_mask", &r2, &c2, &err),
            *types = read_i32(&f, "token_type_ids", &r2, &c2, &err);
    if (!ids || !mask || !types) qb_die("bench_export", &err);
    qb_st_close(&f);
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
    qb_bert_model m;
    if (!ctx || qb_hdf5_from_file(&m, ctx, argv[1], QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err)) qb_die("bench_export", &err);
    int on = 0;
    for (int i = 0; i < m.n_quant; i++) on += !m.quant[i].tq.disabled;
    double tq = pass(&m, ids, mask, types, n, seq, batch, reps);
    qb_bert_quant_enable(&m, "*", false);
    double tf = pass(&m, ids, mask, types, n, seq, batch, reps);
    printf("qdqbert  fake-quant forward (%d quantizers): %lld features x %lld tokens, batch %d, threads %d: %8.1f seq/s\n", on,
           (long long)n, (long long)seq, batch, omp_get_max_threads(), (double)n / tq);
    printf("qdqbert  fp32 forward (quantizers off):      %lld features x %lld tokens, batch %d, threads %d: %8.1f seq/s\n",
           (long long)n, (long long)seq, batch, omp_get_max_threads(), (double)n / tf);
    free(ids);
    free(mask);
    free(types);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return 0;
}

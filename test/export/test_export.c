/* test_export.c: the export layer on the tiny QA fixture (test/model/fixtures/tiny, 40 quantizers with QDQBert amax):
 * int8 weights are the forward's fake quantization bit for bit (drifted weights clipped as the forward clips), the
 * HDF5 round trip gives bit-identical logits, missing amax and inexpressible ONNX settings are one-line errors, and a
 * failed export leaves an earlier file intact. The ONNX numerics are checked against onnxruntime in test_onnx_ort.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "expect.h"
#include "export/hdf5_loader.h"
#include "export/hdf5_writer.h"
#include "export/onnx_graph.h"
#include "export/export_quantizers.h"
#include "export/weight_int8.h"
#include "model/heads.h"
#include "quant/fake_quant.h"

#ifdef QB_HAVE_HDF5
#include <hdf5.h>
#endif

#define B 3
#define S 12

static char tmpdir[] = "/tmp/qb_test_export_XXXXXX";

static char tmp_paths[64][512];
static int n_tmp_paths;

/* tmpdir/name; each call returns its own buffer (64 per run). */
static const char *tmp(const char *name) {
    char *p = tmp_paths[n_tmp_paths++ % 64];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* The bit pattern of x, with -0.0 and +0.0 alike (int8 carries no sign of zero). */
static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return x == 0.0f ? 0u : u;
}

static bool load_tiny(qb_check *c, qb_ctx **ctx, qb_bert_model *m) {
    qb_err err = {0};
    *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!CHECK(c, *ctx && expect_model(m, *ctx, "test/model/fixtures/tiny", QB_BERT_QUESTION_ANSWERING, NULL, &err) == 0, "tiny: %s",
               err.msg)) {
        if (*ctx) qb_ctx_free(*ctx);
        return false;
    }
    qb_bert_quant_enable(m, "*", true);
    return true;
}

/* QA logits [B, S] x 2 of a fixed batch with padding in the last row. */
static bool logits(qb_check *c, qb_bert_model *m, float *start, float *end) {
    int32_t ids[B * S], mask[B * S], types[B * S];
    for (int i = 0; i < B * S; i++) {
        ids[i] = 1 + (i * 37) % 98;
        types[i] = (i % S) >= S / 2;
        mask[i] = !(i / S == B - 1 && i % S >= S - 4);
    }
    qb_bert_batch b = {.batch = B, .seq = S, .input_ids = ids, .attention_mask = mask, .token_type_ids = types};
    qb_bert_output out;
    m->ctx->no_grad = true;
    qb_ctx_step_reset(m->ctx);
    bool ok = qb_bert_question_answering(m, &b, NULL, NULL, &out) == 0 && qb_to_host(m->ctx, out.logits, start) == 0 &&
              qb_to_host(m->ctx, out.end_logits, end) == 0;
    return CHECK(c, ok, "forward: %s", m->ctx->err.msg);
}

/* int8 weights against the forward's own fake quantization, including drifted and narrow-range cases. */
static void check_int8(qb_check *c) {
    qb_ctx *ctx;
    qb_bert_model m;
    if (!load_tiny(c, &ctx, &m)) return;
    int exact = 1, in_range = 1;
    int64_t elems = 0, off_ulp = 0, max_ulp = 0;
    for (int l = 0; l < m.cfg.num_hidden_layers; l++) {
        const qb_bert_layer *ly = &m.layers[l];
        const qb_bert_linear *ls[6] = {&ly->query, &ly->key, &ly->value, &ly->attn_out, &ly->inter, &ly->out};
        for (int k = 0; k < 6; k++) {
            const qb_tensor *w = ls[k]->w;
            const tensor_quantizer *tq = &ls[k]->w_q->tq;
            int64_t rows = w->shape[0], cols = w->shape[1], n = rows * cols;
            float *host = malloc((size_t)n * sizeof(float)), *fq = malloc((size_t)n * sizeof(float)), *back = malloc((size_t)n * sizeof(float));
            qb_to_host(ctx, w, host);
            /* drift: row 0 past its amax both ways, and just inside -128.5/127 amax */
            float a0 = tq->amax[0];
            host[0] = 5.0f * a0;
            host[1] = -5.0f * a0;
            host[2] = -128.4f / 127.0f * a0;
            host[3] = -1.01f * a0;
            fake_quant_per_channel(fq, host, 1, rows, cols, tq->amax, &tq->desc);
            qb_int8_weight q;
            qb_err err = {0};
            if (!CHECK(c, qb_int8_quantize(host, rows, cols, tq->amax, tq->n_amax, &tq->desc, &q, &err) == 0, "%s: %s", w->name, err.msg)) {
                free(host), free(fq), free(back);
                continue;
            }
            qb_int8_dequantize_exact(q.q, rows, cols, q.amax, q.n_scale, &q.desc, back);
            for (int64_t i = 0; i < n; i++) {
                exact &= bits(back[i]) == bits(fq[i]);
                in_range &= q.q[i] >= (int)quant_desc_qmin(&tq->desc) && q.q[i] <= (int)quant_desc_bound(&tq->desc);
                float mult = (float)q.q[i] * q.scale[q.n_scale > 1 ? i / cols : 0];
                int64_t d = llabs((int64_t)bits(mult) - (int64_t)bits(back[i]));
                off_ulp += d != 0;
                if (d > max_ulp) max_ulp = d;
            }
            elems += n;
            exact &= q.q[0] == 127 && q.q[1] == -128 && q.q[2] == -128 && q.q[3] == -128;
            qb_int8_weight_free(&q);
            /* narrow range: the most negative level is -127 */
            quant_desc nd = tq->desc;
            nd.narrow_range = true;
            if (qb_int8_quantize(host, rows, cols, tq->amax, tq->n_amax, &nd, &q, &err) == 0) {
                fake_quant_per_channel(fq, host, 1, rows, cols, tq->amax, &nd);
                qb_int8_dequantize_exact(q.q, rows, cols, q.amax, q.n_scale, &nd, back);
                for (int64_t i = 0; i < n; i++) exact &= bits(back[i]) == bits(fq[i]) && q.q[i] >= -127;
                exact &= q.q[1] == -127;
                qb_int8_weight_free(&q);
            } else {
                exact = 0;
            }
            free(host), free(fq), free(back);
        }
    }
    CHECK(c, exact && in_range, "int8: q / (127 / amax) == fake_quant(w) on every element of the 12 weights (drifted rows clipped "
                                "to 127 / -128, narrow range to -127)");
    printf("     int8: %lld elements, q * weight_scale off the exact value on %lld (%.1f %%), at most %lld ulp\n", (long long)elems,
           (long long)off_ulp, 100.0 * (double)off_ulp / (double)elems, (long long)max_ulp);
    CHECK(c, max_ulp <= 2, "q * weight_scale within 2 ulps of the exact dequantization (got %lld)", (long long)max_ulp);
    qb_err err = {0};
    quant_desc u = quant_desc_default();
    u.is_unsigned = true;
    float w[4] = {0.1f, 0.2f, 0.3f, 0.4f}, amax = 1.0f;
    qb_int8_weight q;
    CHECK(c, qb_int8_quantize(w, 2, 2, &amax, 1, &u, &q, &err) != 0 && strstr(err.msg, "signed"), "unsigned weights refused: %s", err.msg);
    qb_err_clear(&err);
    w[2] = NAN;
    quant_desc dd = quant_desc_default();
    CHECK(c, qb_int8_quantize(w, 2, 2, &amax, 1, &dd, &q, &err) != 0 && strstr(err.msg, "nan"), "NaN weight refused: %s", err.msg);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

/* Export -> load -> forward gives the same logits bit for bit (all quantizers; per-tensor weights; some disabled;
 * weights drifted past their amax). */
static void check_roundtrip(qb_check *c, const char *what, void (*edit)(qb_bert_model *)) {
    qb_ctx *ctx, *ctx2 = NULL;
    qb_bert_model m, m2;
    if (!load_tiny(c, &ctx, &m)) return;
    if (edit) edit(&m);
    float s1[B * S], e1[B * S], s2[B * S], e2[B * S];
    qb_err err = {0};
    qb_hdf5_export_opts o = {.tokenizer_dir = NULL};
    const char *path = tmp("roundtrip.h5");
    bool ok = logits(c, &m, s1, e1) && CHECK(c, qb_hdf5_export(&m, &o, path, &err) == 0, "%s: export: %s", what, err.msg);
    ok = ok && (ctx2 = qb_ctx_new(QB_CPU, 1, &err)) &&
         CHECK(c, qb_hdf5_from_file(&m2, ctx2, path, QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err) == 0, "%s: load: %s", what, err.msg);
    if (ok) {
        int same_state = 1;
        for (int i = 0; i < m.n_quant; i++) {
            const tensor_quantizer *a = &m.quant[i].tq, *b = &m2.quant[i].tq;
            bool on = !a->disabled && a->quant_on;
            same_state &= on == !b->disabled;
            if (on) same_state &= a->n_amax == b->n_amax && memcmp(a->amax, b->amax, (size_t)a->n_amax * sizeof(float)) == 0 &&
                                  a->desc.num_bits == b->desc.num_bits && a->desc.narrow_range == b->desc.narrow_range;
        }
        CHECK(c, same_state, "%s: every quantizer's state, amax and numerics restored", what);
        if (logits(c, &m2, s2, e2))
            CHECK(c, memcmp(s1, s2, sizeof s1) == 0 && memcmp(e1, e2, sizeof e1) == 0, "%s: logits from the HDF5 export bit-identical", what);
        qb_bert_free(&m2);
    }
    if (ctx2) qb_ctx_free(ctx2);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static void per_tensor_weights(qb_bert_model *m) {
    qb_err err = {0};
    float a = 0.05f;
    qb_quantizer_set_amax(m->layers[0].query.w_q, &a, 1, &err);
    qb_quantizer_set_amax(m->layers[1].inter.w_q, &a, 1, &err);
}

static void layer1_off(qb_bert_model *m) { qb_bert_quant_enable(m, "bert.encoder.layer.1.*", false); }

static void drifted(qb_bert_model *m) { /* QAT moved some weights past their frozen amax */
    qb_tensor *w = m->layers[0].value.w;
    int64_t n = qb_numel(w);
    float *h = malloc((size_t)n * sizeof(float));
    qb_to_host(m->ctx, w, h);
    for (int64_t i = 0; i < n; i += 7) h[i] *= 3.0f;
    qb_copy_from_host(m->ctx, w, h);
    free(h);
}

static bool same_file(const char *a, const char *b) {
    FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
    bool same = x && y;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(x);
        cb = fgetc(y);
        same = ca == cb;
    }
    if (x) fclose(x);
    if (y) fclose(y);
    return same;
}

static bool no_tmp_left(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    return system(cmd) != 0;
}

/* Errors: missing amax (listed), inexpressible ONNX settings, unwritable paths; earlier exports survive. */
static void check_errors(qb_check *c) {
    qb_ctx *ctx;
    qb_bert_model m;
    if (!load_tiny(c, &ctx, &m)) return;
    qb_err err = {0};
    qb_hdf5_export_opts ho = {0};
    qb_onnx_export_opts oo = {.mode = QB_ONNX_QDQ};
    const char *h5 = tmp("keep.h5"), *onnx = tmp("keep.onnx");
    bool wrote = CHECK(c, qb_hdf5_export(&m, &ho, h5, &err) == 0, "export: %s", err.msg) &&
                 CHECK(c, qb_onnx_export(&m, &oo, onnx, &err) == 0, "onnx export: %s", err.msg);
    if (wrote) {
        FILE *fp = fopen(tmp("copy.sh"), "w");
        fprintf(fp, "cp %s %s && cp %s %s\n", h5, tmp("keep_before.h5"), onnx, tmp("keep_before.onnx"));
        fclose(fp);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "sh %s", tmp("copy.sh"));
        CHECK(c, system(cmd) == 0, "copies");
        unlink(tmp("copy.sh"));
    }
    /* two quantizers lose their amax */
    qb_quantizer *q1 = qb_bert_quantizer(&m, "bert.encoder.layer.1.output.add_local_input_quantizer");
    qb_quantizer *q2 = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_a_input_quantizer");
    float *a1 = q1->tq.amax, *a2 = q2->tq.amax;
    q1->tq.amax = q2->tq.amax = NULL;
    qb_err_clear(&err);
    CHECK(c, qb_hdf5_export(&m, &ho, h5, &err) != 0 && strstr(err.msg, "2 enabled quantizers without an amax") &&
                 strstr(err.msg, q1->tq.name) && strstr(err.msg, q2->tq.name) && !strchr(err.msg, '\n'),
          "missing amax listed: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, onnx, &err) != 0 && strstr(err.msg, "without an amax"), "ONNX: missing amax: %s", err.msg);
    q1->tq.amax = a1;
    q2->tq.amax = a2;
    /* what ONNX QDQ cannot express */
    qb_quantizer *qi = qb_bert_quantizer(&m, "bert.encoder.layer.0.intermediate.dense._input_quantizer");
    qi->tq.desc.num_bits = 4;
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, onnx, &err) != 0 && strstr(err.msg, qi->tq.name) && strstr(err.msg, "8-bit"), "4-bit: %s", err.msg);
    qi->tq.desc.num_bits = 8;
    qi->tq.desc.narrow_range = true;
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, onnx, &err) != 0 && strstr(err.msg, "narrow_range"), "narrow activations: %s", err.msg);
    qi->tq.desc.narrow_range = false;
    m.layers[1].key.w_q->tq.desc.narrow_range = true;
    oo.mode = QB_ONNX_HF;
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, onnx, &err) != 0 && strstr(err.msg, "save_onnx"), "HF mode, narrow weights: %s", err.msg);
    oo.mode = QB_ONNX_QDQ;
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, tmp("narrow_w.onnx"), &err) == 0, "QDQ mode takes narrow-range weights: %s", err.msg);
    m.layers[1].key.w_q->tq.desc.narrow_range = false;
    /* unwritable: the parent is a regular file */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/x.h5", tmp("keep_before.h5"));
    qb_err_clear(&err);
    CHECK(c, qb_hdf5_export(&m, &ho, bad, &err) != 0 && strstr(err.msg, "Not a directory") && !strchr(err.msg, '\n'),
          "unwritable HDF5 path: %s", err.msg);
    snprintf(bad, sizeof bad, "%s/x.onnx", tmp("keep_before.h5"));
    qb_err_clear(&err);
    CHECK(c, qb_onnx_export(&m, &oo, bad, &err) != 0 && strstr(err.msg, "Not a directory"), "unwritable ONNX path: %s", err.msg);
    if (wrote)
        CHECK(c, same_file(h5, tmp("keep_before.h5")) && same_file(onnx, tmp("keep_before.onnx")),
              "earlier exports intact after the failed ones");
    CHECK(c, no_tmp_left(), "no temporary files left");
    CHECK(c, !qb_hdf5_is_file(onnx) && qb_hdf5_is_file(h5), "HDF5 signature test");
    /* the loader refuses what is not an export */
    qb_ctx *ctx2 = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m2;
    qb_err_clear(&err);
    CHECK(c, qb_hdf5_from_file(&m2, ctx2, onnx, QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err) != 0 && strstr(err.msg, "keep.onnx"),
          "loading a non-HDF5 file names it: %s", err.msg);
    qb_ctx_free(ctx2);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

#ifdef QB_HAVE_HDF5
/* Sets element 0 of a float dataset of an HDF5 file to NaN. */
static bool poison(const char *file, const char *dataset) {
    hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, dataset, H5P_DEFAULT);
    hid_t space = ds < 0 ? -1 : H5Dget_space(ds);
    hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    float *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    bool ok = v && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (ok) v[0] = NAN;
    ok = ok && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    free(v);
    if (space >= 0) H5Sclose(space);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    return ok;
}

/* A non-finite parameter in an export is refused on loading, naming the file and the tensor. */
static void check_non_finite(qb_check *c) {
    qb_ctx *ctx, *ctx2;
    qb_bert_model m, m2;
    if (!load_tiny(c, &ctx, &m)) return;
    qb_err err = {0};
    qb_hdf5_export_opts o = {.tokenizer_dir = NULL};
    const char *path = tmp("nan.h5");
    char ds[300];
    qb_export_param_path("bert.encoder.layer.1.output.LayerNorm.weight", ds, sizeof ds);
    if (CHECK(c, qb_hdf5_export(&m, &o, path, &err) == 0, "export: %s", err.msg) && CHECK(c, poison(path, ds), "NaN written into %s", ds) &&
        (ctx2 = qb_ctx_new(QB_CPU, 1, &err))) {
        int rc = qb_hdf5_from_file(&m2, ctx2, path, QB_BERT_QUESTION_ANSWERING, NULL, NULL, &err);
        CHECK(c, rc != 0 && strstr(err.msg, "nan.h5") && strstr(err.msg, ds) && strstr(err.msg, "nan") && !strchr(err.msg, '\n'),
              "NaN parameter in an export refused naming file and tensor: %s", err.msg);
        if (rc == 0) qb_bert_free(&m2);
        qb_ctx_free(ctx2);
    }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}
#endif

int main(void) {
    qb_check c = {0};
    if (!mkdtemp(tmpdir)) return 1;
    check_int8(&c);
    check_roundtrip(&c, "all quantizers", NULL);
    check_roundtrip(&c, "per-tensor weights", per_tensor_weights);
    check_roundtrip(&c, "layer 1 unquantized", layer1_off);
    check_roundtrip(&c, "drifted weights", drifted);
    check_errors(&c);
#ifdef QB_HAVE_HDF5
    check_non_finite(&c);
#endif
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) return 1;
    return qb_check_finish(&c, "export");
}

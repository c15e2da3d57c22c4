/* hdf5_writer.c: see hdf5_writer.h. */
#include "export/hdf5_writer.h"

const char *const qb_hdf5_tokenizer_files[QB_HDF5_N_TOKENIZER_FILES] = {"vocab.txt", "tokenizer_config.json", "tokenizer.json",
                                                                         "special_tokens_map.json"};

#ifdef QB_HAVE_HDF5
#include <errno.h>
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "export/export_quantizers.h"
#include "export/hdf5_util.h"
#include "export/weight_int8.h"

typedef struct writer {
    hid_t file, lcpl;
    const char *path;
    qb_err *err;
    int64_t bytes_int8, bytes_f32;
} writer;

static int fail(writer *w, const char *what) { return qb_h5_error(w->err, w->path, what); }

/* A dataset at path (groups created on the way) of type t holding data; returns it open (caller closes) or -1. */
static hid_t dataset(writer *w, const char *path, hid_t t, int ndim, const int64_t *shape, const void *data) {
    hsize_t dims[4];
    for (int d = 0; d < ndim; d++) dims[d] = (hsize_t)shape[d];
    /* the error is taken from the library's stack before any other call clears it */
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = space < 0 ? -1 : H5Dcreate2(w->file, path, t, space, w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0) fail(w, path);
    else if (H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        fail(w, path);
        H5Dclose(ds);
        ds = -1;
    }
    if (space >= 0) H5Sclose(space);
    return ds;
}

static int write_closed(writer *w, const char *path, hid_t t, int ndim, const int64_t *shape, const void *data) {
    hid_t ds = dataset(w, path, t, ndim, shape, data);
    if (ds < 0) return -1;
    return H5Dclose(ds) < 0 ? fail(w, path) : 0;
}

/* Text as a scalar fixed-length UTF-8 string dataset. */
static int write_text(writer *w, const char *path, const char *text, size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, len ? len : 1) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0) {
        if (t >= 0) H5Tclose(t);
        return fail(w, path);
    }
    int rc = write_closed(w, path, t, 0, NULL, len ? text : "");
    H5Tclose(t);
    return rc;
}

/* The lines of vocab.txt as a 1-D variable-length UTF-8 string dataset (id = index). */
static int write_vocab(writer *w, char *text, size_t len) {
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (len && text[len - 1] != '\n') n++;
    const char **lines = malloc((size_t)(n + 1) * sizeof *lines);
    if (!lines) return qb_errorf(w->err, "%s: out of memory", w->path);
    int64_t k = 0;
    for (char *p = text; k < n; k++) {
        lines[k] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        if (nl > p && nl[-1] == '\r') nl[-1] = '\0';
        p = nl + 1;
    }
    hid_t t = H5Tcopy(H5T_C_S1);
    int rc = t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ? fail(w, "vocab") : 0;
    if (!rc) rc = write_closed(w, "vocab", t, 1, &n, lines);
    if (t >= 0) H5Tclose(t);
    free(lines);
    return rc;
}

static int write_f32(writer *w, const char *path, int ndim, const int64_t *shape, const float *data) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    w->bytes_f32 += 4 * n;
    return write_closed(w, path, H5T_IEEE_F32LE, ndim, shape, data);
}

/* <group>/<stem>_amax and <stem>_scale of one quantizer, with its numerics as attributes of the amax dataset. */
static int write_quantizer(writer *w, const qb_quantizer *q) {
    char group[256], stem[64], path[400];
    if (qb_export_quant_path(q->tq.name, group, sizeof group, stem, sizeof stem, w->err)) return -1;
    const quant_desc *d = &q->tq.desc;
    int64_t n = q->tq.n_amax;
    float *scale = malloc((size_t)n * sizeof(float));
    if (!scale) return qb_errorf(w->err, "%s: out of memory", w->path);
    for (int64_t i = 0; i < n; i++) scale[i] = qb_int8_scale(q->tq.amax[i], d);
    snprintf(path, sizeof path, "%s/%s_scale", group, stem);
    int rc = write_f32(w, path, n > 1 ? 1 : 0, &n, scale);
    free(scale);
    snprintf(path, sizeof path, "%s/%s_amax", group, stem);
    hid_t ds = rc ? -1 : dataset(w, path, H5T_IEEE_F32LE, n > 1 ? 1 : 0, &n, q->tq.amax);
    if (ds < 0) return -1;
    rc = qb_h5_attr_str(ds, "quantizer", q->tq.name) || qb_h5_attr_int(ds, "num_bits", d->num_bits) ||
         qb_h5_attr_int(ds, "unsigned", d->is_unsigned) || qb_h5_attr_int(ds, "narrow_range", d->narrow_range) ||
         qb_h5_attr_int(ds, "axis", n > 1 ? 0 : -1) || qb_h5_attr_int(ds, "qmin", (int)quant_desc_qmin(d)) ||
         qb_h5_attr_int(ds, "qmax", (int)quant_desc_bound(d));
    if (H5Dclose(ds) < 0) rc = -1;
    return rc ? fail(w, path) : 0;
}

/* An int8 [rows, cols] weight with weight_scale and weight_amax in its group (amax_owned: written here, not by a
 * quantizer). */
static int write_int8(writer *w, const char *param_path, const qb_int8_weight *q, bool amax_owned) {
    int64_t shape[2] = {q->rows, q->cols};
    hid_t ds = dataset(w, param_path, H5T_STD_I8LE, 2, shape, q->q);
    if (ds < 0) return -1;
    w->bytes_int8 += q->rows * q->cols;
    const quant_desc *d = &q->desc;
    int rc = qb_h5_attr_int(ds, "num_bits", d->num_bits) || qb_h5_attr_int(ds, "narrow_range", d->narrow_range) ||
             qb_h5_attr_int(ds, "qmin", (int)quant_desc_qmin(d)) || qb_h5_attr_int(ds, "qmax", (int)quant_desc_bound(d)) ||
             qb_h5_attr_int(ds, "axis", q->n_scale > 1 ? 0 : -1);
    if (H5Dclose(ds) < 0 || rc) return fail(w, param_path);
    char group[300], path[400];
    snprintf(group, sizeof group, "%s", param_path);
    char *slash = strrchr(group, '/');
    if (slash) *slash = '\0';
    if (!amax_owned) return 0;
    int64_t n = q->n_scale;
    snprintf(path, sizeof path, "%s/weight_amax", group);
    if (write_f32(w, path, n > 1 ? 1 : 0, &n, q->amax)) return -1;
    snprintf(path, sizeof path, "%s/weight_scale", group);
    return write_f32(w, path, n > 1 ? 1 : 0, &n, q->scale);
}

/* The weight quantizer of the linear layer whose weight is p, when the forward applies one. */
static const qb_quantizer *weight_quantizer_of(const qb_bert_model *m, const qb_tensor *p) {
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        const qb_bert_layer *ly = &m->layers[i];
        const qb_bert_linear *ls[6] = {&ly->query, &ly->key, &ly->value, &ly->attn_out, &ly->inter, &ly->out};
        for (int k = 0; k < 6; k++)
            if (ls[k]->w == p) return qb_export_quant_active(ls[k]->w_q) ? ls[k]->w_q : NULL;
    }
    const qb_bert_linear *heads[QB_EXPORT_MAX_LINEARS];
    int nh = qb_export_head_linears(m, heads);
    for (int k = 0; k < nh; k++)  /* the tied LM decoder's weight is the word embedding: that stays float */
        if (heads[k]->w == p && p != m->word_emb) return qb_export_quant_active(heads[k]->w_q) ? heads[k]->w_q : NULL;
    return NULL;
}

static bool is_embedding(const qb_bert_model *m, const qb_tensor *p) { return p == m->word_emb || p == m->pos_emb || p == m->type_emb; }

static int write_param(writer *w, qb_bert_model *m, const qb_tensor *p, bool int8_emb) {
    char path[300];
    qb_export_param_path(p->name, path, sizeof path);
    int64_t n = qb_numel(p);
    float *host = malloc((size_t)n * sizeof(float) + 1);
    if (!host) return qb_errorf(w->err, "%s: out of memory", w->path);
    int rc = qb_to_host(m->ctx, p, host) ? qb_errorf(w->err, "%s: %s: %s", w->path, p->name, m->ctx->err.msg) : 0;
    const qb_quantizer *wq = rc ? NULL : weight_quantizer_of(m, p);
    bool emb = !rc && int8_emb && is_embedding(m, p);
    if (!rc && (wq || emb)) {
        qb_int8_weight q;
        quant_desc d = wq ? wq->tq.desc : quant_desc_default();
        float *amax = NULL;
        int64_t n_amax = wq ? wq->tq.n_amax : p->shape[0];
        if (emb && (amax = malloc((size_t)n_amax * sizeof(float)))) {
            d.axis = 0;
            for (int64_t r = 0; r < n_amax; r++) {
                float a = 0.0f;
                for (int64_t c = 0; c < p->shape[1]; c++) a = fmaxf(a, fabsf(host[r * p->shape[1] + c]));
                amax[r] = a;
            }
        }
        if (emb && !amax) rc = qb_errorf(w->err, "%s: out of memory", w->path);
        else if (qb_int8_quantize(host, p->shape[0], p->shape[1], wq ? wq->tq.amax : amax, n_amax, &d, &q, w->err))
            rc = qb_err_context(w->err, "%s: %s", w->path, p->name);
        else {
            rc = write_int8(w, path, &q, emb);
            qb_int8_weight_free(&q);
        }
        free(amax);
    } else if (!rc) {
        rc = write_f32(w, path, p->ndim, p->shape, host);
    }
    free(host);
    return rc;
}

static json_t *desc_json(const quant_desc *d) {
    return json_pack("{s:i, s:i, s:b, s:b, s:s}", "num_bits", d->num_bits, "axis", d->axis, "unsigned", d->is_unsigned,
                     "narrow_range", d->narrow_range,
                     "amax", d->amax_mode == QUANT_AMAX_FIXED ? "fixed" : d->amax_mode == QUANT_AMAX_LEARNABLE ? "learnable" : "calibrated");
}

/* quantization.json: the run's recipe, the per-kind descriptors and every quantizer's state. */
static char *quantization_json(const qb_bert_model *m, const char *recipe, qb_err *err, const char *path) {
    static const char *kinds[QUANT_KIND_COUNT] = {"linear_input", "linear_weight", "matmul_input", "residual_input"};
    json_error_t je;
    json_t *r = recipe ? json_loads(recipe, 0, &je) : json_null();
    if (!r) return qb_errorf(err, "%s: recipe JSON: %s", path, je.text), NULL;
    json_t *root = json_object(), *defaults = json_object(), *qs = json_array();
    for (int k = 0; k < QUANT_KIND_COUNT; k++) json_object_set_new(defaults, kinds[k], desc_json(&m->quant_desc.kind[k]));
    for (int i = 0; i < m->n_quant; i++) {
        const qb_quantizer *q = &m->quant[i];
        json_t *o = desc_json(&q->tq.desc);
        json_object_set_new(o, "name", json_string(q->tq.name));
        json_object_set_new(o, "enabled", json_boolean(qb_export_quant_active(q)));
        json_object_set_new(o, "n_amax", json_integer(q->tq.amax ? q->tq.n_amax : 0));
        json_array_append_new(qs, o);
    }
    json_object_set_new(root, "recipe", r);
    json_object_set_new(root, "defaults", defaults);
    json_object_set_new(root, "quantizers", qs);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text) qb_errorf(err, "%s: out of memory", path);
    return text;
}

static int write_root(writer *w, const qb_bert_model *m, const qb_hdf5_export_opts *o) {
    hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    if (root < 0) return fail(w, "/");
    int rc = qb_h5_attr_str(root, "format", QB_HDF5_FORMAT) || qb_h5_attr_int(root, "format_version", QB_HDF5_FORMAT_VERSION) ||
             qb_h5_attr_str(root, "producer", "qdqbert") ||
             qb_h5_attr_str(root, "weight_layout", "[out, in], as torch.nn.Linear.weight (y = x W^T + b)") ||
             qb_h5_attr_str(root, "quantize", "q = clamp(rint(w * (bound / amax)), qmin, qmax), bound = 2^(num_bits-1) - 1") ||
             qb_h5_attr_str(root, "rounding", "round half to even (rint in FE_TONEAREST)") ||
             qb_h5_attr_str(root, "range", "qmin = -bound - 1 ([-128, 127] for 8 bits), or -bound with narrow_range") ||
             qb_h5_attr_str(root, "dequantize", "w = q * weight_scale, weight_scale = amax / bound (1 where amax <= 2^-24)") ||
             qb_h5_attr_str(root, "dequantize_exact", "w = float32(q / float32(bound / amax)): the fake-quantized weight of "
                                                      "the training forward, bit for bit; q * weight_scale is within 2 ulps of it");
    H5Gclose(root);
    if (rc) return fail(w, "/ attributes");
    int32_t version = QB_HDF5_FORMAT_VERSION;
    if (write_closed(w, "format_version", H5T_STD_I32LE, 0, NULL, &version)) return -1;
    char *cfg = qb_bert_config_dumps(&m->cfg, qb_bert_head_class(m->head));
    if (!cfg) return qb_errorf(w->err, "%s: out of memory", w->path);
    rc = write_text(w, "config.json", cfg, strlen(cfg));
    free(cfg);
    char *qj = rc ? NULL : quantization_json(m, o->recipe_json, w->err, w->path);
    if (!qj) return -1;
    rc = write_text(w, "quantization.json", qj, strlen(qj));
    free(qj);
    for (size_t i = 0; !rc && o->tokenizer_dir && i < QB_HDF5_N_TOKENIZER_FILES; i++) {
        char src[4096], dst[128];
        snprintf(src, sizeof src, "%s/%s", o->tokenizer_dir, qb_hdf5_tokenizer_files[i]);
        if (access(src, R_OK) != 0) continue;
        char *text;
        size_t len;
        if (qb_read_file(src, &text, &len, w->err)) return -1;
        snprintf(dst, sizeof dst, "tokenizer/%s", qb_hdf5_tokenizer_files[i]);
        rc = write_text(w, dst, text, len);
        if (!rc && i == 0) rc = write_vocab(w, text, len);
        free(text);
    }
    return rc;
}

int qb_hdf5_export(qb_bert_model *m, const qb_hdf5_export_opts *o, const char *path, qb_err *err) {
    if (qb_export_check_quantizers(m, err)) return qb_err_context(err, "%s", path);
    /* the file is built in memory (the core driver, no backing store) and written by qb_write_file_atomic: a full
     * disk or an unwritable directory then fails one write call with errno, never an HDF5 flush half-way */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    writer w = {.path = path, .err = err, .file = -1, .lcpl = -1};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)64 << 20, 0) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return fail(&w, "file access properties");
    }
    w.file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w.file < 0) return fail(&w, "cannot create in memory");
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    int rc = w.lcpl < 0 || H5Pset_create_intermediate_group(w.lcpl, 1) < 0 ? fail(&w, "link properties") : 0;
    if (!rc) rc = write_root(&w, m, o);
    for (int i = 0; !rc && i < m->n_params; i++) rc = write_param(&w, m, m->params[i], o->int8_embeddings);
    int n_active = 0;
    for (int i = 0; !rc && i < m->n_quant; i++)
        if (qb_export_quant_active(&m->quant[i])) {
            n_active++;
            rc = write_quantizer(&w, &m->quant[i]);
        }
    if (w.lcpl >= 0) H5Pclose(w.lcpl);
    void *image = NULL;
    ssize_t size = 0;
    if (!rc && H5Fflush(w.file, H5F_SCOPE_GLOBAL) < 0) rc = fail(&w, "flush");
    if (!rc && (size = H5Fget_file_image(w.file, NULL, 0)) <= 0) rc = fail(&w, "file image");
    if (!rc && !(image = malloc((size_t)size))) rc = qb_errorf(err, "%s: out of memory (%zd bytes)", path, size);
    if (!rc && H5Fget_file_image(w.file, image, (size_t)size) != size) rc = fail(&w, "file image");
    if (H5Fclose(w.file) < 0 && !rc) rc = fail(&w, "close");
    if (!rc) rc = qb_write_file_atomic(path, image, (size_t)size, err);
    free(image);
    if (rc) return -1;
    if (o->log)
        fprintf(o->log, "export: wrote %s (HDF5 %s v%d, %.1f MiB): %d active quantizers, %.1f MiB int8 + %.1f MiB float32\n", o->log_path ? o->log_path : path,
                QB_HDF5_FORMAT, QB_HDF5_FORMAT_VERSION, (double)size / 1048576.0, n_active, (double)w.bytes_int8 / 1048576.0,
                (double)w.bytes_f32 / 1048576.0);
    return 0;
}

#else

int qb_hdf5_export(qb_bert_model *m, const qb_hdf5_export_opts *o, const char *path, qb_err *err) {
    (void)m;
    (void)o;
    return qb_errorf(err, "%s: this build has no HDF5 support (rebuild with libhdf5-dev, meson -Dhdf5=enabled)", path);
}

#endif

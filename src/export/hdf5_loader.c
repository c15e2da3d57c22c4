/* hdf5_loader.c: see hdf5_loader.h. */
#include "export/hdf5_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/fileio.h"

bool qb_hdf5_is_file(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    FILE *fp = fopen(path, "rb");
    unsigned char head[8];
    bool ok = fp && fread(head, 1, 8, fp) == 8 && memcmp(head, sig, 8) == 0;
    if (fp) fclose(fp);
    return ok;
}

#ifdef QB_HAVE_HDF5
#include <hdf5.h>
#include <jansson.h>
#include "export/export_quantizers.h"
#include "export/hdf5_util.h"
#include "export/hdf5_writer.h"
#include "export/weight_int8.h"

/* True when every component of a relative path exists. */
static bool exists(hid_t file, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) return false;
        if (!c) return true;
        *p = '/';
    }
}

/* Reads dataset path as float32 or int8 (by its stored type) after checking its shape; *is_int8 says which. */
static int read_tensor(hid_t file, const char *path, int ndim, const int64_t *shape, void *out_f32, int8_t *out_i8, bool *is_int8,
                       const char *fpath, qb_err *err) {
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) return qb_h5_error(err, fpath, path);
    hid_t t = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = 0;
    hsize_t dims[4] = {0};
    int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    bool same = nd == ndim && nd >= 0 && nd <= 4;
    if (same) H5Sget_simple_extent_dims(space, dims, NULL);
    for (int d = 0; same && d < ndim; d++) same = dims[d] == (hsize_t)shape[d];
    if (!same) {
        rc = qb_errorf(err, "%s: %s: stored shape does not match the config", fpath, path);
    } else {
        H5T_class_t cls = H5Tget_class(t);
        *is_int8 = cls == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_2;
        if (*is_int8 && !out_i8) rc = qb_errorf(err, "%s: %s: int8 where float32 is expected", fpath, path);
        else if (!*is_int8 && cls != H5T_FLOAT) rc = qb_errorf(err, "%s: %s: expected float32 or int8", fpath, path);
        else if (H5Dread(ds, *is_int8 ? H5T_NATIVE_INT8 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *is_int8 ? (void *)out_i8 : out_f32) < 0)
            rc = qb_h5_error(err, fpath, path);
    }
    if (t >= 0) H5Tclose(t);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

/* A 0-d or 1-d float32 dataset of at most cap values; *n gets the count. */
static int read_vector(hid_t file, const char *path, float *out, int64_t cap, int64_t *n, const char *fpath, qb_err *err) {
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) return qb_h5_error(err, fpath, path);
    hid_t space = H5Dget_space(ds);
    int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    hsize_t dims[1] = {1};
    if (nd == 1) H5Sget_simple_extent_dims(space, dims, NULL);
    int rc = 0;
    if (nd < 0 || nd > 1 || (int64_t)dims[0] > cap || dims[0] < 1)
        rc = qb_errorf(err, "%s: %s: expected a scalar or up to %lld values", fpath, path, (long long)cap);
    else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = qb_h5_error(err, fpath, path);
    *n = (int64_t)dims[0];
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

/* The numerics stored as attributes of a dataset (num_bits, unsigned, narrow_range) over the default descriptor. */
static int stored_desc(hid_t file, const char *path, quant_desc *d, const char *fpath, qb_err *err) {
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) return qb_h5_error(err, fpath, path);
    int bits = 8, uns = 0, narrow = 0;
    int rc = qb_h5_attr_read_int(ds, "num_bits", &bits);
    if (H5Aexists(ds, "unsigned") > 0) rc |= qb_h5_attr_read_int(ds, "unsigned", &uns);
    if (H5Aexists(ds, "narrow_range") > 0) rc |= qb_h5_attr_read_int(ds, "narrow_range", &narrow);
    H5Dclose(ds);
    if (rc) return qb_errorf(err, "%s: %s: attribute num_bits missing or unreadable", fpath, path);
    d->num_bits = bits;
    d->is_unsigned = uns != 0;
    d->narrow_range = narrow != 0;
    if (quant_desc_validate(d, err)) return qb_err_context(err, "%s: %s", fpath, path);
    return 0;
}

static int load_param(qb_bert_model *m, hid_t file, const qb_tensor *p, const char *fpath, qb_err *err) {
    char path[300];
    qb_export_param_path(p->name, path, sizeof path);
    int64_t n = qb_numel(p);
    float *host = malloc((size_t)n * sizeof(float) + 1);
    int8_t *q = p->ndim == 2 ? malloc((size_t)n + 1) : NULL;
    float *amax = p->ndim == 2 ? malloc((size_t)p->shape[0] * sizeof(float)) : NULL;
    bool is_int8 = false;
    int rc = !host || (p->ndim == 2 && (!q || !amax)) ? qb_errorf(err, "%s: out of memory", fpath) : 0;
    if (!rc) rc = read_tensor(file, path, p->ndim, p->shape, host, q, &is_int8, fpath, err);
    if (!rc && is_int8) {
        char group[300], apath[400];
        snprintf(group, sizeof group, "%s", path);
        *strrchr(group, '/') = '\0';
        snprintf(apath, sizeof apath, "%s/weight_amax", group);
        quant_desc d = quant_desc_default();
        int64_t na = 0;
        rc = stored_desc(file, path, &d, fpath, err) || read_vector(file, apath, amax, p->shape[0], &na, fpath, err);
        if (!rc && na != 1 && na != p->shape[0]) rc = qb_errorf(err, "%s: %s: %lld values for %lld rows", fpath, apath, (long long)na, (long long)p->shape[0]);
        if (!rc) qb_int8_dequantize_exact(q, p->shape[0], p->shape[1], amax, na, &d, host);
    }
    if (!rc) rc = qb_check_finite(host, n, fpath, path, "parameters", err);
    if (!rc && qb_copy_from_host(m->ctx, (qb_tensor *)p, host)) rc = qb_errorf(err, "%s: %s: %s", fpath, path, m->ctx->err.msg);
    free(host);
    free(q);
    free(amax);
    return rc;
}

static int load_quantizer(qb_quantizer *q, hid_t file, const char *fpath, qb_err *err) {
    char group[256], stem[64], path[400];
    if (qb_export_quant_path(q->tq.name, group, sizeof group, stem, sizeof stem, err)) return -1;
    snprintf(path, sizeof path, "%s/%s_amax", group, stem);
    if (!exists(file, path)) {
        q->tq.disabled = true;
        return 0;
    }
    quant_desc d = q->tq.desc;
    int64_t cap = q->channels > 1 ? q->channels : 1, n = 0;
    float *amax = malloc((size_t)cap * sizeof(float));
    if (!amax) return qb_errorf(err, "%s: out of memory", fpath);
    int rc = stored_desc(file, path, &d, fpath, err) || read_vector(file, path, amax, cap, &n, fpath, err);
    if (!rc) {
        d.amax_mode = QUANT_AMAX_CALIBRATED;
        q->tq.desc = d;
        if (qb_quantizer_set_amax(q, amax, n, err)) rc = qb_err_context(err, "%s: %s", fpath, path);
        q->tq.disabled = false;
        q->tq.quant_on = true;
        q->tq.calib_on = false;
    }
    free(amax);
    return rc;
}

static int check_format(hid_t file, const char *path, qb_err *err) {
    hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
    int version = 0;
    bool ok = root >= 0 && qb_h5_attr_read_int(root, "format_version", &version) == 0;
    if (root >= 0) H5Gclose(root);
    if (!ok) return qb_errorf(err, "%s: not a qdqbert export (no format_version attribute)", path);
    if (version < 1 || version > QB_HDF5_FORMAT_VERSION)
        return qb_errorf(err, "%s: format_version %d (this build reads 1 to %d)", path, version, QB_HDF5_FORMAT_VERSION);
    return 0;
}

static bool is_encoder(const char *name) { return strncmp(name, "bert.embeddings.", 16) == 0 || strncmp(name, "bert.encoder.", 13) == 0; }

/* The export's config.json (after its format check). */
static int read_config(hid_t file, const char *path, qb_bert_config *cfg, qb_err *err) {
    char *cfg_text = NULL;
    size_t len = 0;
    char what[4200];
    snprintf(what, sizeof what, "%s: config.json", path);
    int rc = check_format(file, path, err) || qb_h5_read_text(file, "config.json", &cfg_text, &len, path, err) ||
             qb_bert_config_parse(cfg_text, len, what, cfg, err);
    free(cfg_text);
    return rc ? -1 : 0;
}

int qb_hdf5_read_config(const char *path, qb_bert_config *cfg, qb_err *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return qb_h5_error(err, path, "cannot open");
    int rc = read_config(file, path, cfg, err);
    H5Fclose(file);
    return rc;
}

int qb_hdf5_from_file(qb_bert_model *m, qb_ctx *ctx, const char *path, qb_bert_head head, const qb_bert_options *opt,
                      qb_bert_load_report *rep, qb_err *err) {
    if (rep) memset(rep, 0, sizeof *rep);
    memset(m, 0, sizeof *m);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return qb_h5_error(err, path, "cannot open");
    qb_bert_config cfg;
    int rc = read_config(file, path, &cfg, err);
    bool built = false;
    if (!rc) {
        if (qb_bert_init(m, ctx, &cfg, head, opt)) rc = qb_errorf(err, "%s: %s", path, ctx->err.msg);
        built = true;
    }
    char fresh[1024] = "";
    for (int i = 0; !rc && i < m->n_params; i++) {
        const qb_tensor *p = m->params[i];
        char pp[300];
        qb_export_param_path(p->name, pp, sizeof pp);
        if (!exists(file, pp)) {
            if (is_encoder(p->name)) rc = qb_errorf(err, "%s: %s missing", path, pp);
            else if (strlen(fresh) + strlen(p->name) + 3 < sizeof fresh)
                snprintf(fresh + strlen(fresh), sizeof fresh - strlen(fresh), "%s%s", fresh[0] ? ", " : "", p->name);
            continue;
        }
        if (!(rc = load_param(m, file, p, path, err)) && rep) rep->n_params++;
    }
    for (int i = 0; !rc && i < m->n_quant; i++) {
        rc = load_quantizer(&m->quant[i], file, path, err);
        if (!rc && rep && !m->quant[i].tq.disabled) rep->n_amax++;
    }
    H5Fclose(file);
    if (!rc && rep && fresh[0]) rep->newly_initialized = strdup(fresh);
    if (rc && built) qb_bert_free(m);
    return rc;
}

int qb_hdf5_extract_tokenizer(const char *path, const char *dir, qb_err *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return qb_h5_error(err, path, "cannot open");
    int rc = qb_mkdir_p(dir, err), found = 0;
    for (size_t i = 0; !rc && i < QB_HDF5_N_TOKENIZER_FILES; i++) {
        char ds[128], out[4096];
        snprintf(ds, sizeof ds, "tokenizer/%s", qb_hdf5_tokenizer_files[i]);
        if (!exists(file, ds)) continue;
        char *text;
        size_t len;
        snprintf(out, sizeof out, "%s/%s", dir, qb_hdf5_tokenizer_files[i]);
        rc = qb_h5_read_text(file, ds, &text, &len, path, err);
        if (!rc) {
            rc = qb_write_file_atomic(out, text, len, err);
            free(text);
        }
        found++;
    }
    H5Fclose(file);
    if (!rc && !found) rc = qb_errorf(err, "%s: no tokenizer files stored (tokenizer/vocab.txt); set model.tokenizer", path);
    return rc;
}

#else

int qb_hdf5_read_config(const char *path, qb_bert_config *cfg, qb_err *err) {
    (void)cfg;
    return qb_errorf(err, "%s: this build has no HDF5 support", path);
}

int qb_hdf5_from_file(qb_bert_model *m, qb_ctx *ctx, const char *path, qb_bert_head head, const qb_bert_options *opt,
                      qb_bert_load_report *rep, qb_err *err) {
    (void)m, (void)ctx, (void)head, (void)opt, (void)rep;
    return qb_errorf(err, "%s: this build has no HDF5 support (rebuild with libhdf5-dev, meson -Dhdf5=enabled)", path);
}

int qb_hdf5_extract_tokenizer(const char *path, const char *dir, qb_err *err) {
    (void)dir;
    return qb_errorf(err, "%s: this build has no HDF5 support", path);
}

#endif

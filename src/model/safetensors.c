/* safetensors.c: see safetensors.h. */
#include "model/safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "base/json.h"

#define HEADER_MAX ((uint64_t)100 << 20)

static const struct { const char *name; qb_st_dtype dtype; int size; } dtypes[] = {
    {"F32", QB_ST_F32, 4}, {"F16", QB_ST_F16, 2}, {"BF16", QB_ST_BF16, 2}, {"I32", QB_ST_I32, 4}, {"I64", QB_ST_I64, 8},
    {"F64", QB_ST_OTHER, 8}, {"I16", QB_ST_OTHER, 2}, {"I8", QB_ST_OTHER, 1}, {"U8", QB_ST_OTHER, 1},
    {"U16", QB_ST_OTHER, 2}, {"U32", QB_ST_OTHER, 4}, {"U64", QB_ST_OTHER, 8}, {"BOOL", QB_ST_OTHER, 1},
    {"F8_E4M3", QB_ST_OTHER, 1}, {"F8_E5M2", QB_ST_OTHER, 1},
};

const char *qb_st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < ndim && o < n; d++) o += (size_t)snprintf(buf + o, n - o, d ? ", %ld" : "%ld", (long)shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

void qb_st_close(qb_safetensors *f) {
    if (f->map) munmap(f->map, f->size);
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

static int by_begin(const void *a, const void *b) {
    const qb_st_tensor *x = *(qb_st_tensor *const *)a, *y = *(qb_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Fills t from one header entry; messages name the file and the tensor. */
static int parse_entry(qb_safetensors *f, const char *name, json_t *v, qb_st_tensor *t, qb_err *err) {
    const char *p = f->path;
    if (!json_is_object(v)) return qb_errorf(err, "%s: tensor %s: header entry is not an object", p, name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return qb_errorf(err, "%s: tensor %s: dtype missing or not a string", p, name);
    if (!json_is_array(sh)) return qb_errorf(err, "%s: tensor %s: shape missing or not an array", p, name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return qb_errorf(err, "%s: tensor %s: data_offsets is not [begin, end]", p, name);
    int esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(json_string_value(dt), dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[i].name);
        }
    if (!esize) return qb_errorf(err, "%s: tensor %s: unknown dtype \"%s\"", p, name, json_string_value(dt));
    if (json_array_size(sh) > QB_ST_MAX_DIMS) return qb_errorf(err, "%s: tensor %s: more than %d dims", p, name, QB_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(sh);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *s = json_array_get(sh, (size_t)d);
        if (!json_is_integer(s) || json_integer_value(s) < 0 || json_integer_value(s) > ((int64_t)1 << 40))
            return qb_errorf(err, "%s: tensor %s: shape entry %d is not a non-negative integer", p, name, d);
        t->shape[d] = json_integer_value(s);
        if (t->shape[d] && t->numel > (((int64_t)1 << 40) / t->shape[d])) return qb_errorf(err, "%s: tensor %s: too many elements", p, name);
        t->numel *= t->shape[d];
    }
    json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b))
        return qb_errorf(err, "%s: tensor %s: data_offsets are not 0 <= begin <= end", p, name);
    t->begin = (size_t)json_integer_value(b);
    t->end = (size_t)json_integer_value(e);
    if (t->end > f->data_size)
        return qb_errorf(err, "%s: tensor %s: data_offsets [%zu, %zu] run past the end of the data (%zu bytes)", p, name, t->begin,
                         t->end, f->data_size);
    if (t->end - t->begin != (size_t)t->numel * (size_t)esize) {
        char sb[128];
        return qb_errorf(err, "%s: tensor %s: %zu bytes for shape %s of %s (want %zu)", p, name, t->end - t->begin,
                         qb_st_shape_str(t->ndim, t->shape, sb, sizeof sb), t->dtype_name, (size_t)t->numel * (size_t)esize);
    }
    t->name = strdup(name);
    if (!t->name) return qb_errorf(err, "%s: out of memory", p);
    return 0;
}

static int parse_header(qb_safetensors *f, const char *text, size_t len, qb_err *err) {
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return qb_errorf(err, "%s: header is not valid JSON: %s (column %d)", f->path, je.text, je.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = qb_errorf(err, "%s: header is not a JSON object", f->path);
        goto done;
    }
    f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = qb_errorf(err, "%s: out of memory", f->path);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = qb_errorf(err, "%s: __metadata__ is not an object", f->path);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = qb_errorf(err, "%s: __metadata__ key %s: expected a string, got %s", f->path, mk, qb_json_kind(mv));
                    goto done;
                }
            }
            continue;
        }
        if ((rc = parse_entry(f, key, v, &f->tensors[f->n], err))) goto done;
        f->n++;
    }
    qb_st_tensor **order = malloc((size_t)(f->n + 1) * sizeof *order);
    if (!order) {
        rc = qb_errorf(err, "%s: out of memory", f->path);
        goto done;
    }
    for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n, sizeof *order, by_begin);
    /* the data section is exactly the tensors, back to back (as the safetensors crate validates) */
    size_t covered = 0, base = 8 + (f->size - 8 - f->data_size);  /* file offset of the data section */
    for (int i = 0; i < f->n && !rc; i++) {
        if (i > 0 && order[i]->begin < order[i - 1]->end)
            rc = qb_errorf(err, "%s: tensors %s [%zu, %zu] and %s [%zu, %zu] overlap", f->path, order[i - 1]->name,
                           order[i - 1]->begin, order[i - 1]->end, order[i]->name, order[i]->begin, order[i]->end);
        else if (order[i]->begin > covered)
            rc = qb_errorf(err, "%s: data section bytes [%zu, %zu) belong to no tensor (file offset %zu, before tensor %s)", f->path,
                           covered, order[i]->begin, base + covered, order[i]->name);
        if (order[i]->end > covered) covered = order[i]->end;
    }
    if (!rc && covered < f->data_size)
        rc = qb_errorf(err, "%s: data section bytes [%zu, %zu) belong to no tensor (file offset %zu, after the last tensor)", f->path,
                       covered, f->data_size, base + covered);
    free(order);
done:
    json_decref(root);
    return rc;
}

int qb_st_open(qb_safetensors *f, const char *path, qb_err *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = qb_open_regular(path, err);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return qb_errorf(err, "%s: %s", path, strerror(e));
    }
    if (st.st_size < 8) {
        close(fd);
        return qb_errorf(err, "%s: %ld bytes is too short for a safetensors file", path, (long)st.st_size);
    }
    f->size = (size_t)st.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return qb_errorf(err, "%s: mmap: %s", path, strerror(errno));
    }
    const unsigned char *b = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > HEADER_MAX || hlen > f->size - 8) {
        int rc = qb_errorf(err, "%s: header length %llu does not fit in the file (%zu bytes)", path, (unsigned long long)hlen, f->size);
        qb_st_close(f);
        return rc;
    }
    f->data = b + 8 + hlen;
    f->data_size = f->size - 8 - (size_t)hlen;
    if (parse_header(f, (const char *)b + 8, (size_t)hlen, err)) {
        qb_st_close(f);
        return -1;
    }
    return 0;
}

const qb_st_tensor *qb_st_find(const qb_safetensors *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {  /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int qb_st_read_f32(const qb_safetensors *f, const qb_st_tensor *t, float *out, qb_err *err) {
    const unsigned char *p = f->data + t->begin;
    switch (t->dtype) {
    case QB_ST_F32: memcpy(out, p, (size_t)t->numel * 4); return 0;
    case QB_ST_F16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_float(h);
        }
        return 0;
    case QB_ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        }
        return 0;
    default: return qb_errorf(err, "%s: tensor %s: dtype %s cannot be read as float32", f->path, t->name, t->dtype_name);
    }
}

int qb_st_read_i32(const qb_safetensors *f, const qb_st_tensor *t, int32_t *out, qb_err *err) {
    const unsigned char *p = f->data + t->begin;
    if (t->dtype == QB_ST_I32) {
        memcpy(out, p, (size_t)t->numel * 4);
        return 0;
    }
    if (t->dtype != QB_ST_I64) return qb_errorf(err, "%s: tensor %s: dtype %s is not an integer type", f->path, t->name, t->dtype_name);
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        if (v < INT32_MIN || v > INT32_MAX) return qb_errorf(err, "%s: tensor %s: element %ld = %lld does not fit in int32", f->path, t->name, (long)i, (long long)v);
        out[i] = (int32_t)v;
    }
    return 0;
}

int qb_st_write(const char *path, const qb_st_entry *entries, int n, qb_err *err) {
    json_t *root = json_object(), *meta = json_object();
    if (!root || !meta) {
        json_decref(root);
        json_decref(meta);
        return qb_errorf(err, "%s: out of memory", path);
    }
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const qb_st_entry *e = &entries[i];
        if (json_object_get(root, e->name)) {
            json_decref(root);
            return qb_errorf(err, "%s: tensor %s written twice", path, e->name);
        }
        int64_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) {
            numel *= e->shape[d];
            json_array_append_new(shape, json_integer(e->shape[d]));
        }
        size_t bytes = (size_t)numel * 4;
        json_object_set_new(root, e->name, json_pack("{s:s, s:o, s:[I, I]}", "dtype", e->f32 ? "F32" : "I32", "shape", shape,
                                                     "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes)));
        offset += bytes;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return qb_errorf(err, "%s: out of memory", path);
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(padded >> (8 * i));
    qb_atomic_file af;
    if (qb_atomic_open(&af, path, err)) {
        free(text);
        return -1;
    }
    bool ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(text, 1, hlen, af.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    free(text);
    for (int i = 0; ok && i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < entries[i].ndim; d++) numel *= entries[i].shape[d];
        const void *src = entries[i].f32 ? (const void *)entries[i].f32 : (const void *)entries[i].i32;
        ok = numel == 0 || fwrite(src, 4, (size_t)numel, af.fp) == (size_t)numel;
    }
    if (!ok) {
        int e = errno;
        qb_atomic_abort(&af);
        return qb_errorf(err, "%s: write failed: %s", path, strerror(e));
    }
    return qb_atomic_commit(&af, err);
}

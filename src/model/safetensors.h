/* safetensors.h: a memory-mapped safetensors reader (header validated, F32/F16/BF16 read as float32) and an
 * F32 writer. Format: u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, data. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

#define QB_ST_MAX_DIMS 8

typedef enum { QB_ST_F32, QB_ST_F16, QB_ST_BF16, QB_ST_I32, QB_ST_I64, QB_ST_OTHER } qb_st_dtype;

typedef struct qb_st_tensor {
    char *name;
    qb_st_dtype dtype;
    char dtype_name[16];          /* as written in the header, e.g. "F32" */
    int ndim;
    int64_t shape[QB_ST_MAX_DIMS];
    int64_t numel;
    size_t begin, end;            /* byte offsets into the data section */
} qb_st_tensor;

typedef struct qb_safetensors {
    char path[4096];
    void *map;                    /* the whole file, read-only */
    size_t size;
    const unsigned char *data;    /* start of the data section */
    size_t data_size;
    qb_st_tensor *tensors;        /* in header order */
    int n;
} qb_safetensors;

/* Maps and validates a file: header JSON, dtypes, shapes vs byte sizes, offsets inside the file, no overlaps. */
int qb_st_open(qb_safetensors *f, const char *path, qb_err *err);
/* Unmaps and frees (safe on a zeroed or failed struct). */
void qb_st_close(qb_safetensors *f);
/* The tensor with this name, or NULL. */
const qb_st_tensor *qb_st_find(const qb_safetensors *f, const char *name);
/* Converts a float tensor (F32/F16/BF16) to float32 into out [numel]. */
int qb_st_read_f32(const qb_safetensors *f, const qb_st_tensor *t, float *out, qb_err *err);
/* Converts an integer tensor (I32/I64) into out [numel]; values must fit in int32. */
int qb_st_read_i32(const qb_safetensors *f, const qb_st_tensor *t, int32_t *out, qb_err *err);
/* Formats a shape like "[64, 32]" into buf. */
const char *qb_st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

typedef struct qb_st_entry {
    const char *name;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[QB_ST_MAX_DIMS];
    const float *f32;              /* F32 data [numel], or NULL when i32 is set */
    const int32_t *i32;            /* I32 data [numel] */
} qb_st_entry;

/* Writes entries (names unique) to path atomically, with __metadata__ {"format": "pt"}. */
int qb_st_write(const char *path, const qb_st_entry *entries, int n, qb_err *err);

/* fileio.h: whole-file reads and atomic writes (temporary file, then rename). */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "base/error.h"

/* Reads a whole file into a malloc'd buffer (NUL-terminated, *len excludes the NUL). */
int qb_read_file(const char *path, char **data, size_t *len, qb_err *err);
/* Reads a whole file, gunzipping it when its name ends in ".gz". */
int qb_read_file_maybe_gz(const char *path, char **data, size_t *len, qb_err *err);

typedef struct qb_atomic_file {
    FILE *fp;
    char path[4096];     /* final path */
    char tmp_path[4096]; /* path.tmp.PID, renamed over path on commit */
} qb_atomic_file;

/* Opens path.tmp.PID for writing. */
int qb_atomic_open(qb_atomic_file *f, const char *path, qb_err *err);
/* Flushes, fsyncs, closes and renames the temporary file over the final path. */
int qb_atomic_commit(qb_atomic_file *f, qb_err *err);
/* Closes and removes the temporary file; the final path is untouched. */
void qb_atomic_abort(qb_atomic_file *f);
/* Writes a whole buffer atomically. */
int qb_write_file_atomic(const char *path, const void *data, size_t len, qb_err *err);
/* Copies a whole file (atomically at dst). */
int qb_copy_file(const char *src, const char *dst, qb_err *err);
/* Creates a directory and its parents (like mkdir -p). */
int qb_mkdir_p(const char *path, qb_err *err);

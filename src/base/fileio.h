/* fileio.h: whole-file reads and atomic writes (temporary file, then rename). */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include <zlib.h>
#include "base/error.h"

/* Opens a regular file for reading; FIFOs, devices, sockets and directories are refused (without blocking). Returns
 * the descriptor (close-on-exec) or -1. */
int qb_open_regular(const char *path, qb_err *err);
/* qb_open_regular, then gzdopen: reads gzip and plain files alike. NULL on error. */
gzFile qb_gzopen_regular(const char *path, qb_err *err);
/* "a directory", "a FIFO", "a character device", ... for an st_mode. */
const char *qb_file_kind(unsigned mode);
/* Reads a whole regular file into a malloc'd buffer (NUL-terminated, *len excludes the NUL). */
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
/* Flushes, fsyncs, closes and renames the temporary file over the final path, then fsyncs its directory. */
int qb_atomic_commit(qb_atomic_file *f, qb_err *err);
/* Closes and removes the temporary file; the final path is untouched. */
void qb_atomic_abort(qb_atomic_file *f);
/* Writes a whole buffer atomically. */
int qb_write_file_atomic(const char *path, const void *data, size_t len, qb_err *err);
/* Copies a whole file (atomically at dst). */
int qb_copy_file(const char *src, const char *dst, qb_err *err);
/* fsyncs a directory (its entries: files renamed or created in it). */
int qb_fsync_dir(const char *dir, qb_err *err);
/* path made absolute with symbolic links resolved, for the part of it that exists (the rest appended as given). */
int qb_resolve_path(const char *path, char *out, size_t n, qb_err *err);
/* The topmost missing directory on the way to path (path itself when only it is missing; "" when path exists). */
void qb_missing_ancestor(const char *path, char *out, size_t n);
/* Removes path and then its parents while they are empty, up to and including top (a qb_missing_ancestor result). */
void qb_rmdir_empty(const char *path, const char *top);
/* Creates a directory and its parents (like mkdir -p). */
int qb_mkdir_p(const char *path, qb_err *err);

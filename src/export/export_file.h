/* export_file.h: atomic export outputs: a temporary file in the destination directory, fsync, rename over the final
 * name, fsync of the directory; an earlier file of the same name survives any failure. Errors carry strerror. */
#pragma once
#include <stddef.h>
#include "base/error.h"

/* The temporary name used for path ("path.tmp.PID"). */
int qb_export_tmp_path(const char *path, char *tmp, size_t n, qb_err *err);
/* fsyncs tmp, renames it over path and fsyncs the directory; removes tmp on failure. */
int qb_export_commit(const char *tmp, const char *path, qb_err *err);
/* Writes len bytes to path atomically. */
int qb_export_write_atomic(const char *path, const void *data, size_t len, qb_err *err);

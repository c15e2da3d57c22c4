/* metrics_log.h: a JSON-lines metrics file (one object per logging step), rewritten atomically on each append so
 * that it is always whole; on resume the records up to the resumed step are kept. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct qb_metrics_log {
    char path[4096];
    char *text;          /* the file's lines */
    size_t len, cap;
} qb_metrics_log;

/* Starts a log at path: empty, or (keep_until_step >= 0) with the existing file's records whose "step" is at most
 * keep_until_step. Nothing is written until the first append. */
int qb_metrics_log_open(qb_metrics_log *l, const char *path, int64_t keep_until_step, qb_err *err);
/* Appends one record (compact JSON, one line) and rewrites the file. */
int qb_metrics_log_append(qb_metrics_log *l, const json_t *record, qb_err *err);
/* Frees the buffer. */
void qb_metrics_log_close(qb_metrics_log *l);

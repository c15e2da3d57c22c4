/* error.c: see error.h. */
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qb_errorf(qb_err *err, const char *fmt, ...) {
    if (!err || err->failed) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->failed = 1;
    return -1;
}

int qb_err_context(qb_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[QB_ERR_MSG_MAX], old[QB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof err->msg - 3) k = sizeof err->msg - 3;
    memcpy(err->msg, prefix, k);
    memcpy(err->msg + k, ": ", 2);
    size_t room = sizeof err->msg - k - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + k + 2, old, m);
    err->msg[k + 2 + m] = '\0';
    err->failed = 1;
    return -1;
}

void qb_err_clear(qb_err *err) {
    if (!err) return;
    err->failed = 0;
    err->msg[0] = '\0';
}

void qb_die(const char *prog, const qb_err *err) {
    fprintf(stderr, "%s: error: %s\n", prog, err && err->failed ? err->msg : "unknown error");
    exit(1);
}

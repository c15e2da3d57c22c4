/* error.h: error values that carry a one-line message up to the one place that prints it. */
#pragma once
#include <stdarg.h>

#define QB_ERR_MSG_MAX 1024

typedef struct qb_err {
    int failed;                 /* 0 = ok */
    char msg[QB_ERR_MSG_MAX];   /* one line, no trailing newline */
} qb_err;

/* Sets err (if not NULL and not already failed) from a printf format; returns -1. */
int qb_errorf(qb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "context: " to an existing error message; returns -1. */
int qb_err_context(qb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears err. */
void qb_err_clear(qb_err *err);
/* Prints "prog: msg" to stderr and exits with status 1. */
_Noreturn void qb_die(const char *prog, const qb_err *err);

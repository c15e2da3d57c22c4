/* check.h: the tests' assertion helpers; every test binary ends with qb_check_finish. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct qb_check {
    int passed, failed, skipped;
} qb_check;

/* Records one check; prints a FAIL line with the message when cond is false. Returns cond. */
bool qb_check_true(qb_check *c, bool cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define CHECK(c, cond, ...) qb_check_true((c), (cond), __FILE__, __LINE__, __VA_ARGS__)

/* Compares n floats: |got - want| <= atol + rtol * |want| everywhere; prints the max abs difference. */
bool qb_check_close(qb_check *c, const char *what, const float *got, const float *want, int64_t n, double atol, double rtol);
/* Records a skipped check with its reason. */
void qb_check_skip(qb_check *c, const char *what, const char *reason);
/* Prints "N passed, N failed, N skipped" and returns the exit status (1 if any failed, 77 if all skipped). */
int qb_check_finish(qb_check *c, const char *suite);
/* The directory named by environment variable env when it exists; else prints "SKIP: ..." and returns NULL
 * (the caller then exits 77). */
const char *qb_test_data_dir(const char *env);
/* Path under the source root ($QB_SOURCE_ROOT, else "."); returns a static buffer per call slot. */
const char *qb_test_path(const char *rel);

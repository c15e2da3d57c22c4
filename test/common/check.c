/* check.c: see check.h. */
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

bool qb_check_true(qb_check *c, bool cond, const char *file, int line, const char *fmt, ...) {
    if (cond) {
        c->passed++;
        return true;
    }
    c->failed++;
    fprintf(stdout, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    return false;
}

bool qb_check_close(qb_check *c, const char *what, const float *got, const float *want, int64_t n, double atol, double rtol) {
    double maxdiff = 0.0;
    int64_t worst = -1, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (isnan(got[i]) != isnan(want[i])) d = INFINITY;
        else if (isnan(got[i])) d = 0.0;
        if (d > maxdiff || worst < 0) {
            if (d > maxdiff) maxdiff = d;
            if (worst < 0 || d >= maxdiff) worst = i;
        }
        if (d > atol + rtol * fabs((double)want[i])) bad++;
    }
    if (bad == 0) {
        c->passed++;
        printf("ok   %-48s n=%-8ld maxdiff=%.3g\n", what, (long)n, maxdiff);
        return true;
    }
    c->failed++;
    printf("FAIL %-48s n=%-8ld maxdiff=%.3g at %ld (got %.9g want %.9g), %ld outside atol=%.1g rtol=%.1g\n", what, (long)n, maxdiff,
           (long)worst, worst >= 0 ? got[worst] : 0.0, worst >= 0 ? want[worst] : 0.0, (long)bad, atol, rtol);
    return false;
}

void qb_check_skip(qb_check *c, const char *what, const char *reason) {
    c->skipped++;
    printf("SKIP %s: %s\n", what, reason);
}

int qb_check_finish(qb_check *c, const char *suite) {
    printf("%s: %d passed, %d failed, %d skipped\n", suite, c->passed, c->failed, c->skipped);
    if (c->failed) return 1;
    if (c->passed == 0 && c->skipped > 0) return 77;
    return 0;
}

const char *qb_test_path(const char *rel) {
    static char buf[8][4096];
    static int slot = 0;
    const char *root = getenv("QB_SOURCE_ROOT");
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/%s", root ? root : ".", rel);
    return out;
}

const char *qb_test_data_dir(const char *env) {
    const char *dir = getenv(env);
    struct stat st;
    if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return dir;
    printf("SKIP: data directory %s not found (set %s)\n", dir ? dir : "(unset)", env);
    return NULL;
}

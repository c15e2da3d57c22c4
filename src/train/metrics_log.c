/* metrics_log.c: see metrics_log.h. */
#include "train/metrics_log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"

static int add_text(qb_metrics_log *l, const char *s, size_t n, qb_err *err) {
    if (l->len + n + 2 > l->cap) {
        size_t cap = (l->len + n + 2) * 2;
        char *t = realloc(l->text, cap);
        if (!t) return qb_errorf(err, "%s: out of memory", l->path);
        l->text = t;
        l->cap = cap;
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len++] = '\n';
    l->text[l->len] = '\0';
    return 0;
}

int qb_metrics_log_open(qb_metrics_log *l, const char *path, int64_t keep_until_step, qb_err *err) {
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s", path);
    if (keep_until_step < 0 || access(path, R_OK) != 0) return 0;
    char *data = NULL;
    size_t len = 0;
    if (qb_read_file(path, &data, &len, err)) return -1;
    int rc = 0, line = 0;
    for (char *p = data; !rc && *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (n) {
            json_error_t je;
            json_t *rec = json_loadb(p, n, 0, &je);
            json_t *step = json_object_get(rec, "step");
            if (!json_is_integer(step)) rc = qb_errorf(err, "%s:%d: not a metrics record with an integer \"step\"", path, line);
            else if (json_integer_value(step) <= keep_until_step) rc = add_text(l, p, n, err);
            json_decref(rec);
        }
        p += n + (nl ? 1 : 0);
    }
    free(data);
    return rc;
}

int qb_metrics_log_append(qb_metrics_log *l, const json_t *record, qb_err *err) {
    char *line = json_dumps(record, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (!line) return qb_errorf(err, "%s: out of memory formatting a record", l->path);
    int rc = add_text(l, line, strlen(line), err);
    free(line);
    if (!rc) rc = qb_write_file_atomic(l->path, l->text, l->len, err);
    return rc;
}

void qb_metrics_log_close(qb_metrics_log *l) {
    free(l->text);
    memset(l, 0, sizeof *l);
}

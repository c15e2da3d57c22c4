/* json.c: see json.h. */
#include "base/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"

#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53: a real below this in magnitude is the integer written */
#define REAL_DIGITS_MAX 17               /* %.17g round-trips every double */

json_t *qb_json_loadb(const char *text, size_t len, const char *what, qb_err *err) {
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow) root = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &je);
    if (!root) qb_errorf(err, "%s: line %d column %d: %s", what, je.line, je.column, je.text);
    return root;
}

json_t *qb_json_load_file(const char *path, qb_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (qb_read_file(path, &text, &len, err)) return NULL;
    json_t *root = qb_json_loadb(text, len, path, err);
    free(text);
    return root;
}

const char *qb_json_kind(const json_t *v) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

bool qb_json_is_integral(const json_t *v) {
    if (json_is_integer(v)) return true;
    double x = json_real_value(v);
    return json_is_real(v) && floor(x) == x;
}

int qb_json_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out, const char *what, const char *key, qb_err *err) {
    char buf[40];
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi)
            return qb_errorf(err, "%s: key %s: %lld is outside [%" PRId64 ", %" PRId64 "]", what, key, (long long)x, lo, hi);
        *out = x;
        return 0;
    }
    if (!json_is_real(v)) return qb_errorf(err, "%s: key %s: expected an integer", what, key);
    double x = json_real_value(v);
    qb_json_real_str(x, buf, sizeof buf);
    if (floor(x) != x) return qb_errorf(err, "%s: key %s: %s is not an integer", what, key, buf);
    if (x < (double)lo || x > (double)hi)
        return qb_errorf(err, "%s: key %s: %s is outside [%" PRId64 ", %" PRId64 "]", what, key, buf, lo, hi);
    if (fabs(x) >= EXACT_INT_LIMIT)
        return qb_errorf(err, "%s: key %s: %s is not exact (the file has an integer beyond 64 bits, so its numbers are read as doubles)", what, key, buf);
    *out = (int64_t)x;
    return 0;
}

/* v as a new integer when it is an integral real of at most 2^53, else NULL. */
static json_t *exact_integer(const json_t *v) {
    double x = json_real_value(v);
    return json_is_real(v) && floor(x) == x && fabs(x) < EXACT_INT_LIMIT ? json_integer((json_int_t)x) : NULL;
}

void qb_json_integers_back(json_t *v) {
    const char *key;
    json_t *item, *k;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            if ((k = exact_integer(item))) json_object_set_new(v, key, k);
            else qb_json_integers_back(item);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if ((k = exact_integer(item))) json_array_set_new(v, i, k);
            else qb_json_integers_back(item);
        }
    }
}

char *qb_json_real_str(double x, char *buf, size_t cap) {
    char sci[40] = "";
    if (!isfinite(x)) {
        snprintf(buf, cap, "%s", isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
        return buf;
    }
    int digits = 1;
    for (; digits <= REAL_DIGITS_MAX; digits++) { /* fewest significant digits that read back as x */
        snprintf(sci, sizeof sci, "%.*e", digits - 1, x);
        if (strtod(sci, NULL) == x) break;
    }
    const char *e = strchr(sci, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (exp10 < -4 || exp10 >= 16) { /* "1e-12", "1.5e+30" as Python's repr */
        snprintf(buf, cap, "%s", sci);
        return buf;
    }
    int decimals = digits - 1 - exp10 > 0 ? digits - 1 - exp10 : 0;
    int n = snprintf(buf, cap, "%.*f", decimals, x);
    if (n > 0 && (size_t)n + 2 < cap && !strchr(buf, '.')) memcpy(buf + n, ".0", 3);
    return buf;
}

char *qb_json_dumps_shortest(const json_t *root, size_t flags) {
    char *text = json_dumps(root, flags | JSON_REAL_PRECISION(REAL_DIGITS_MAX));
    size_t len = text ? strlen(text) : 0;
    char *out = text ? malloc(2 * len + 32) : NULL; /* a real of >= 3 characters grows by at most 2 ("1e5" -> "1e+05") */
    if (!out) {
        free(text);
        return NULL;
    }
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        char ch = text[i];
        if (in_string || (ch != '-' && (ch < '0' || ch > '9'))) {
            if (ch == '"') in_string = !in_string;
            out[n++] = ch;
            if (in_string && ch == '\\' && i + 1 < len) out[n++] = text[++i];
            i++;
            continue;
        }
        size_t end = i + strspn(text + i, "+-0123456789.eE");
        if (strcspn(text + i, ".eE") < end - i) {
            char buf[40];
            qb_json_real_str(strtod(text + i, NULL), buf, sizeof buf);
            memcpy(out + n, buf, strlen(buf));
            n += strlen(buf);
        } else {
            memcpy(out + n, text + i, end - i);
            n += end - i;
        }
        i = end;
    }
    out[n] = '\0';
    free(text);
    return out;
}

int qb_json_save(const json_t *root, size_t flags, const char *path, qb_err *err) {
    char *text = qb_json_dumps_shortest(root, flags);
    size_t n = text ? strlen(text) : 0;
    char *line = text ? realloc(text, n + 2) : NULL; /* "\n\0" */
    if (!line) {
        free(text);
        return qb_errorf(err, "%s: out of memory", path);
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    int rc = qb_write_file_atomic(path, line, n + 1, err);
    free(line);
    return rc;
}

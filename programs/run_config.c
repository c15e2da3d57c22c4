/* run_config.c: see run_config.h. */
#include "run_config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"

/* inih's line buffer (INI_MAX_LINE of Debian's build): a line and its newline must fit in one less. */
#define QB_CFG_MAX_LINE 200

static const qb_cfg_key *find_key(const qb_cfg_key *keys, int n, const char *section, const char *key) {
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0) return &keys[i];
    return NULL;
}

static bool section_known(const qb_cfg_key *keys, int n, const char *section) {
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i].section, section) == 0) return true;
    return false;
}

/* A range "[lo, hi]" / "(lo, hi]" / ... : bounds as text (exact for integers) and whether each end is included. */
typedef struct range {
    char lo[32], hi[32];
    bool lo_in, hi_in;
} range;

static bool parse_range(const char *text, range *r) {
    if (!text || (text[0] != '[' && text[0] != '(')) return false;
    const char *comma = strchr(text, ','), *close = text + strlen(text) - 1;
    if (!comma || (*close != ']' && *close != ')') || comma - text - 1 >= (long)sizeof r->lo || close - comma - 2 >= (long)sizeof r->hi)
        return false;
    snprintf(r->lo, sizeof r->lo, "%.*s", (int)(comma - text - 1), text + 1);
    snprintf(r->hi, sizeof r->hi, "%.*s", (int)(close - comma - 1), comma + 1 + strspn(comma + 1, " "));
    r->hi[strcspn(r->hi, " ")] = '\0';
    r->lo_in = text[0] == '[';
    r->hi_in = *close == ']';
    return true;
}

static bool int_in(int64_t v, const range *r) {
    long long lo = strtoll(r->lo, NULL, 10), hi = strtoll(r->hi, NULL, 10);
    return (r->lo_in ? v >= lo : v > lo) && (r->hi_in ? v <= hi : v < hi);
}

static bool float_in(double v, const range *r) {
    double lo = strtod(r->lo, NULL), hi = strtod(r->hi, NULL);
    return (r->lo_in ? v >= lo : v > lo) && (r->hi_in ? v <= hi : v < hi);
}

/* Parses value into the field of k, checking k's range; on failure writes a reason into why. */
static int set_value(const qb_cfg_key *k, void *dst, const char *value, char *why, size_t why_n) {
    char *field = (char *)dst + k->offset, *end = NULL;
    range r;
    bool ranged = parse_range(k->range, &r);
    errno = 0;
    switch (k->type) {
    case QB_CFG_STRING:
        if (strlen(value) >= k->size) return snprintf(why, why_n, "value longer than %zu characters", k->size - 1), -1;
        strcpy(field, value);
        return 0;
    case QB_CFG_INT: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end) return snprintf(why, why_n, "'%s' is not an integer", value), -1;
        if (errno == ERANGE) return snprintf(why, why_n, "'%s' is out of range%s%s", value, ranged ? " " : "", ranged ? k->range : ""), -1;
        if (ranged && !int_in(v, &r)) return snprintf(why, why_n, "%lld outside %s", v, k->range), -1;
        *(int64_t *)field = v;
        return 0;
    }
    case QB_CFG_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v)) return snprintf(why, why_n, "'%s' is not a finite number", value), -1;
        if (ranged && !float_in(v, &r)) return snprintf(why, why_n, "%g outside %s", v, k->range), -1;
        *(double *)field = v;
        return 0;
    }
    case QB_CFG_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes")) *(int *)field = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no")) *(int *)field = 0;
        else return snprintf(why, why_n, "'%s' is not a boolean (true/false)", value), -1;
        return 0;
    }
    return -1;
}

typedef struct load_state {
    const qb_cfg_key *keys;
    int n;
    void *dst;
    const char *path;
    qb_err *err;
    bool *seen;              /* [n]: the key was set by an earlier line */
    const qb_cfg_key *dup;   /* the key set twice, when that is the error */
} load_state;

/* The first (or last) line of the file that sets section.key, 0 when none does. */
static int find_line(const char *path, const char *section, const char *key, bool first);

static int on_entry(void *user, const char *section, const char *key, const char *value) {
    load_state *s = user;
    if (s->err->failed) return 0;
    if (!section_known(s->keys, s->n, section)) return qb_errorf(s->err, "unknown section [%s]", section), 0;
    const qb_cfg_key *k = find_key(s->keys, s->n, section, key);
    if (!k) return qb_errorf(s->err, "unknown key '%s' in [%s]", key, section), 0;
    if (s->seen[k - s->keys]) {  /* inih also lands here for an indented continuation line; the caller tells them apart */
        s->dup = k;
        return qb_errorf(s->err, "duplicate key '%s' in [%s] (first set on line %d)", key, section, find_line(s->path, section, key, true)), 0;
    }
    s->seen[k - s->keys] = true;
    char why[256];
    if (set_value(k, s->dst, value, why, sizeof why)) return qb_errorf(s->err, "%s.%s: %s", section, key, why), 0;
    return 1;
}

/* Does line `no` of the file start with blanks (inih's continuation of the previous value)? */
static bool indented_line(const char *path, int no) {
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    char line[4096];
    bool indented = false;
    for (int i = 1; fgets(line, sizeof line, fp); i++)
        if (i == no) {
            indented = line[0] == ' ' || line[0] == '\t';
            break;
        }
    fclose(fp);
    return indented;
}

int qb_cfg_load_file(const qb_cfg_key *keys, int n_keys, void *dst, const char *path, qb_err *err) {
    int fd = qb_open_regular(path, err);
    if (fd < 0) return -1;
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        close(fd);
        return qb_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    }
    char line[4096];
    for (int no = 1; fgets(line, sizeof line, fp); no++)  /* inih cuts longer lines silently: refuse them */
        if (strlen(line) > QB_CFG_MAX_LINE - 1) {
            fclose(fp);
            return qb_errorf(err, "%s:%d: line longer than %d bytes", path, no, QB_CFG_MAX_LINE - 2);
        }
    if (ferror(fp)) {
        fclose(fp);
        return qb_errorf(err, "%s: cannot read: %s", path, strerror(errno));
    }
    rewind(fp);
    bool *seen = calloc((size_t)n_keys + 1, sizeof *seen);
    if (!seen) {
        fclose(fp);
        return qb_errorf(err, "%s: out of memory", path);
    }
    load_state s = {keys, n_keys, dst, path, err, seen, NULL};
    int rc = ini_parse_file(fp, on_entry, &s);
    fclose(fp);
    free(seen);
    if (err->failed && s.dup && indented_line(path, rc)) {
        qb_err_clear(err);
        return qb_errorf(err, "%s:%d: an indented line is a continuation of key '%s' in [%s]: not supported (write each value on "
                              "its key's line, without leading blanks)", path, rc, s.dup->key, s.dup->section);
    }
    if (err->failed) return qb_err_context(err, "%s:%d", path, rc);
    if (rc > 0) return qb_errorf(err, "%s:%d: malformed line (expected [section] or key = value)", path, rc);
    if (rc < 0) return qb_errorf(err, "%s: cannot read", path);
    return 0;
}

int qb_cfg_apply_override(const qb_cfg_key *keys, int n_keys, void *dst, const char *arg, qb_err *err) {
    const char *eq = strchr(arg, '='), *dot = strchr(arg, '.');
    if (!eq || !dot || dot > eq) return qb_errorf(err, "command line: '%s' is not section.key=value", arg);
    char section[128], key[128];
    size_t ls = (size_t)(dot - arg), lk = (size_t)(eq - dot - 1);
    if (ls >= sizeof section || lk >= sizeof key) return qb_errorf(err, "command line: '%s': name too long", arg);
    memcpy(section, arg, ls);
    section[ls] = '\0';
    memcpy(key, dot + 1, lk);
    key[lk] = '\0';
    const qb_cfg_key *k = find_key(keys, n_keys, section, key);
    if (!k) return qb_errorf(err, "command line: unknown key '%s.%s'", section, key);
    char why[256];
    if (set_value(k, dst, eq + 1, why, sizeof why)) return qb_errorf(err, "command line: %s.%s: %s", section, key, why);
    return 0;
}

void qb_cfg_print(const qb_cfg_key *keys, int n_keys, const void *src, FILE *out) {
    const char *cur = "";
    for (int i = 0; i < n_keys; i++) {
        const qb_cfg_key *k = &keys[i];
        if (strcmp(cur, k->section)) fprintf(out, "%s[%s]\n", i ? "\n" : "", cur = k->section);
        const char *field = (const char *)src + k->offset;
        char val[1100];
        switch (k->type) {
        case QB_CFG_STRING: snprintf(val, sizeof val, "%s", field); break;
        case QB_CFG_INT: snprintf(val, sizeof val, "%lld", (long long)*(const int64_t *)field); break;
        case QB_CFG_FLOAT: snprintf(val, sizeof val, "%g", *(const double *)field); break;
        case QB_CFG_BOOL: snprintf(val, sizeof val, "%s", *(const int *)field ? "true" : "false"); break;
        }
        const char *kind = k->type == QB_CFG_STRING ? "string" : k->type == QB_CFG_BOOL ? "true/false" : NULL;
        if (kind) fprintf(out, "%-18s = %-24s ; %s: %s\n", k->key, val, kind, k->help);
        else fprintf(out, "%-18s = %-24s ; %s %s: %s\n", k->key, val, k->type == QB_CFG_INT ? "integer in" : "number in",
                     k->range ? k->range : "(no stated range)", k->help);
    }
}

int qb_cfg_find_line(const char *path, const char *section, const char *key) { return find_line(path, section, key, false); }

static int find_line(const char *path, const char *section, const char *key, bool first) {
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    char line[2048], cur[128] = "";
    int n = 0, found = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, fp)) {
        n++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '[') {
            char *end = strchr(p, ']');
            if (end) snprintf(cur, sizeof cur, "%.*s", (int)(end - p - 1), p + 1);
        } else if (strcmp(cur, section) == 0 && strncmp(p, key, klen) == 0) {
            char *q = p + klen;
            while (*q == ' ' || *q == '\t') q++;
            if ((*q == '=' || *q == ':') && !(first && found)) found = n;
        }
    }
    fclose(fp);
    return found;
}

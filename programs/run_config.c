/* run_config.c: see run_config.h. */
#include "run_config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* Parses value into the field of k; on failure writes a reason into why. */
static int set_value(const qb_cfg_key *k, void *dst, const char *value, char *why, size_t why_n) {
    char *field = (char *)dst + k->offset, *end = NULL;
    errno = 0;
    switch (k->type) {
    case QB_CFG_STRING:
        if (strlen(value) >= k->size) return snprintf(why, why_n, "value longer than %zu characters", k->size - 1), -1;
        strcpy(field, value);
        return 0;
    case QB_CFG_INT: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) return snprintf(why, why_n, "'%s' is not an integer", value), -1;
        *(int64_t *)field = v;
        return 0;
    }
    case QB_CFG_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v)) return snprintf(why, why_n, "'%s' is not a finite number", value), -1;
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
} load_state;

static int on_entry(void *user, const char *section, const char *key, const char *value) {
    load_state *s = user;
    if (s->err->failed) return 0;
    if (!section_known(s->keys, s->n, section)) return qb_errorf(s->err, "unknown section [%s]", section), 0;
    const qb_cfg_key *k = find_key(s->keys, s->n, section, key);
    if (!k) return qb_errorf(s->err, "unknown key '%s' in [%s]", key, section), 0;
    char why[256];
    if (set_value(k, s->dst, value, why, sizeof why)) return qb_errorf(s->err, "%s.%s: %s", section, key, why), 0;
    return 1;
}

int qb_cfg_load_file(const qb_cfg_key *keys, int n_keys, void *dst, const char *path, qb_err *err) {
    FILE *fp = fopen(path, "r");
    if (!fp) return qb_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return qb_errorf(err, "%s: not a regular file", path);
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
    load_state s = {keys, n_keys, dst, path, err};
    int rc = ini_parse_file(fp, on_entry, &s);
    fclose(fp);
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
        fprintf(out, "%-18s = %-24s ; %s\n", k->key, val, k->help);
    }
}

int qb_cfg_find_line(const char *path, const char *section, const char *key) {
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
            if (*q == '=' || *q == ':') found = n;
        }
    }
    fclose(fp);
    return found;
}

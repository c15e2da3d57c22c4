/* run_config.h: typed key tables for INI run configs (inih) plus "section.key=value" command-line overrides. */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "base/error.h"

typedef enum { QB_CFG_STRING, QB_CFG_INT, QB_CFG_FLOAT, QB_CFG_BOOL } qb_cfg_type;

typedef struct qb_cfg_key {
    const char *section;
    const char *key;
    qb_cfg_type type;
    size_t offset;       /* offset of the field in the config struct (char[size], int64_t, double or int) */
    size_t size;         /* buffer size for strings */
    const char *help;
    const char *range;   /* numbers: the values allowed, "[lo, hi]" with ( or ) for an open end; checked when set */
} qb_cfg_key;

/* Reads an INI file into dst; unknown sections/keys, a key set twice, indented continuation lines, malformed values and
 * values outside their key's range are errors naming file:line and key. Special files are refused. */
int qb_cfg_load_file(const qb_cfg_key *keys, int n_keys, void *dst, const char *path, qb_err *err);
/* Applies one "section.key=value" override (range checked). */
int qb_cfg_apply_override(const qb_cfg_key *keys, int n_keys, void *dst, const char *arg, qb_err *err);
/* Prints every key with its current value and help, INI style. */
void qb_cfg_print(const qb_cfg_key *keys, int n_keys, const void *src, FILE *out);
/* The line of the file that sets section.key (the last one), or 0 when the file does not set it. */
int qb_cfg_find_line(const char *path, const char *section, const char *key);

/* squad_data.h: SQuAD v1.1 / v2.0 JSON reader with validated answer spans. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"

typedef struct qb_squad_answer {
    char *text;
    int32_t start; /* answer_start, in characters (code points) of the context */
    int32_t len;   /* length of text in characters */
} qb_squad_answer;

typedef struct qb_squad_example {
    char *id, *question;
    int64_t context; /* index into the set's contexts */
    int32_t n_answers, n_plausible;
    qb_squad_answer *answers, *plausible;
    bool is_impossible;
} qb_squad_example;

#define QB_SQUAD_SKIP_MSGS 8

typedef struct qb_squad_set {
    char *version;
    char **contexts;
    int64_t n_contexts;
    qb_squad_example *ex;
    int64_t n;
    int64_t n_skipped;                         /* bad examples left out (skip mode) */
    char skip_msgs[QB_SQUAD_SKIP_MSGS][256];   /* the first reasons, one line each */
} qb_squad_set;

/* Reads a SQuAD file (.json or .json.gz). Bad examples (missing fields, answer_start outside the context, answer text
 * not at answer_start) fail naming the file and question id, or with skip_bad are left out and counted. */
int qb_squad_read(const char *path, bool skip_bad, qb_squad_set *set, qb_err *err);
/* Frees the set. */
void qb_squad_free(qb_squad_set *set);
/* Keeps the first n examples (run_qa's max_*_samples); contexts stay. n < 0 or >= the count keeps all. */
void qb_squad_keep_first(qb_squad_set *set, int64_t n);
/* Index of the example with this id, or -1 (linear scan). */
int64_t qb_squad_find(const qb_squad_set *set, const char *id);

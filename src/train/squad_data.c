/* squad_data.c: see squad_data.h. */
#include "train/squad_data.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "text/utf8.h"

typedef struct reader {
    const char *path;
    qb_squad_set *set;
    int64_t cap_ex, cap_ctx;
} reader;

static int grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? 2 * *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Validates and copies answers; fills msg on bad data. */
static int read_answers(json_t *arr, const char *key, const char *ctx, size_t ctx_len, int64_t ctx_chars,
                        qb_squad_answer **out, int32_t *n_out, char *msg, size_t msg_cap) {
    *out = NULL;
    *n_out = 0;
    if (!arr) return 0;
    if (!json_is_array(arr)) { snprintf(msg, msg_cap, "key %s: expected an array", key); return 1; }
    size_t n = json_array_size(arr);
    if (n == 0) return 0;
    qb_squad_answer *a = calloc(n, sizeof *a);
    if (!a) { snprintf(msg, msg_cap, "out of memory"); return -1; }
    *out = a;
    size_t i;
    json_t *ans;
    json_array_foreach(arr, i, ans) {
        json_t *text = json_object_get(ans, "text"), *start = json_object_get(ans, "answer_start");
        if (!json_is_string(text)) { snprintf(msg, msg_cap, "%s[%zu]: missing key text", key, i); return 1; }
        if (!json_is_integer(start)) { snprintf(msg, msg_cap, "%s[%zu]: missing key answer_start", key, i); return 1; }
        json_int_t s = json_integer_value(start);
        const char *t = json_string_value(text);
        size_t tl = json_string_length(text);
        int64_t t_chars = qb_utf8_count(t, tl);
        if (s < 0 || s + t_chars > ctx_chars) {
            snprintf(msg, msg_cap, "%s[%zu]: answer_start %lld outside the context (%lld characters)", key, i,
                     (long long)s, (long long)ctx_chars);
            return 1;
        }
        size_t b = qb_utf8_byte_offset(ctx, ctx_len, (int64_t)s);
        if (b + tl > ctx_len || memcmp(ctx + b, t, tl) != 0) {
            snprintf(msg, msg_cap, "%s[%zu]: answer text \"%.60s\" is not at answer_start %lld", key, i, t, (long long)s);
            return 1;
        }
        a[i].text = strndup(t, tl);
        if (!a[i].text) { snprintf(msg, msg_cap, "out of memory"); return -1; }
        a[i].start = (int32_t)s;
        a[i].len = (int32_t)t_chars;
        (*n_out)++;
    }
    return 0;
}

static void free_example(qb_squad_example *e) {
    free(e->id);
    free(e->question);
    for (int32_t i = 0; i < e->n_answers; i++) free(e->answers[i].text);
    for (int32_t i = 0; i < e->n_plausible; i++) free(e->plausible[i].text);
    free(e->answers);
    free(e->plausible);
    memset(e, 0, sizeof *e);
}

/* One question: 0 ok, 1 bad (msg set), -1 fatal. */
static int read_question(json_t *qa, const char *ctx, size_t ctx_len, int64_t ctx_chars, int64_t ctx_index,
                         qb_squad_example *e, char *msg, size_t msg_cap) {
    memset(e, 0, sizeof *e);
    json_t *id = json_object_get(qa, "id"), *q = json_object_get(qa, "question");
    json_t *imp = json_object_get(qa, "is_impossible");
    if (!json_is_string(id)) { snprintf(msg, msg_cap, "missing key id"); return 1; }
    e->id = strdup(json_string_value(id));
    if (!e->id) return -1;
    if (!ctx) { snprintf(msg, msg_cap, "paragraph has no context string"); return 1; }
    if (!json_is_string(q)) { snprintf(msg, msg_cap, "missing key question"); return 1; }
    if (imp && !json_is_boolean(imp)) { snprintf(msg, msg_cap, "key is_impossible: expected true or false"); return 1; }
    e->is_impossible = imp && json_is_true(imp);
    e->question = strndup(json_string_value(q), json_string_length(q));
    if (!e->question) return -1;
    e->context = ctx_index;
    json_t *answers = json_object_get(qa, "answers");
    if (!answers) { snprintf(msg, msg_cap, "missing key answers"); return 1; }
    int rc = read_answers(answers, "answers", ctx, ctx_len, ctx_chars, &e->answers, &e->n_answers, msg, msg_cap);
    if (rc) return rc;
    rc = read_answers(json_object_get(qa, "plausible_answers"), "plausible_answers", ctx, ctx_len, ctx_chars,
                      &e->plausible, &e->n_plausible, msg, msg_cap);
    if (rc) return rc;
    if (!e->is_impossible && e->n_answers == 0) { snprintf(msg, msg_cap, "no answers and not is_impossible"); return 1; }
    if (e->is_impossible && e->n_answers > 0) { snprintf(msg, msg_cap, "is_impossible with answers"); return 1; }
    return 0;
}

static int read_data(reader *r, json_t *data, bool skip_bad, qb_err *err) {
    qb_squad_set *set = r->set;
    size_t ai, pi, qi;
    json_t *art, *para, *qa;
    json_array_foreach(data, ai, art) {
        json_t *paras = json_object_get(art, "paragraphs");
        if (!json_is_array(paras)) return qb_errorf(err, "%s: data[%zu]: missing key paragraphs", r->path, ai);
        json_array_foreach(paras, pi, para) {
            json_t *ctx = json_object_get(para, "context"), *qas = json_object_get(para, "qas");
            if (!json_is_array(qas)) return qb_errorf(err, "%s: data[%zu].paragraphs[%zu]: missing key qas", r->path, ai, pi);
            const char *c = json_is_string(ctx) ? json_string_value(ctx) : NULL;
            size_t c_len = c ? json_string_length(ctx) : 0;
            int64_t c_chars = c ? qb_utf8_count(c, c_len) : 0;
            int64_t c_index = set->n_contexts;
            if (c) {
                if (grow((void **)&set->contexts, &r->cap_ctx, set->n_contexts + 1, sizeof *set->contexts))
                    return qb_errorf(err, "%s: out of memory", r->path);
                set->contexts[set->n_contexts] = strndup(c, c_len);
                if (!set->contexts[set->n_contexts]) return qb_errorf(err, "%s: out of memory", r->path);
                set->n_contexts++;
            }
            json_array_foreach(qas, qi, qa) {
                if (grow((void **)&set->ex, &r->cap_ex, set->n + 1, sizeof *set->ex))
                    return qb_errorf(err, "%s: out of memory", r->path);
                qb_squad_example *e = &set->ex[set->n];
                char msg[200];
                int rc = read_question(qa, c, c_len, c_chars, c_index, e, msg, sizeof msg);
                if (rc < 0) { free_example(e); return qb_errorf(err, "%s: out of memory", r->path); }
                if (rc == 0) { set->n++; continue; }
                char where[160];
                if (e->id) snprintf(where, sizeof where, "question id %.100s", e->id);
                else snprintf(where, sizeof where, "data[%zu].paragraphs[%zu].qas[%zu]", ai, pi, qi);
                free_example(e);
                if (!skip_bad) return qb_errorf(err, "%s: %s: %s", r->path, where, msg);
                if (set->n_skipped < QB_SQUAD_SKIP_MSGS)
                    snprintf(set->skip_msgs[set->n_skipped], sizeof set->skip_msgs[0], "%.100s: %.150s", where, msg);
                set->n_skipped++;
            }
        }
    }
    return 0;
}

int qb_squad_read(const char *path, bool skip_bad, qb_squad_set *set, qb_err *err) {
    memset(set, 0, sizeof *set);
    char *buf;
    size_t len;
    if (qb_read_file_maybe_gz(path, &buf, &len, err)) return -1;
    int64_t bad = qb_utf8_invalid_offset(buf, len);
    if (bad >= 0) {
        free(buf);
        return qb_errorf(err, "%s: invalid UTF-8 at byte offset %lld", path, (long long)bad);
    }
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!root) return qb_errorf(err, "%s: line %d column %d (byte offset %d): %s", path, je.line, je.column, je.position, je.text);
    json_t *data = json_object_get(root, "data"), *version = json_object_get(root, "version");
    int rc = 0;
    if (!json_is_array(data)) rc = qb_errorf(err, "%s: missing key data (an array of articles)", path);
    if (!rc) {
        set->version = strdup(json_is_string(version) ? json_string_value(version) : "");
        reader r = {.path = path, .set = set};
        rc = set->version ? read_data(&r, data, skip_bad, err) : qb_errorf(err, "%s: out of memory", path);
    }
    json_decref(root);
    if (rc) qb_squad_free(set);
    return rc ? -1 : 0;
}

void qb_squad_free(qb_squad_set *set) {
    for (int64_t i = 0; i < set->n; i++) free_example(&set->ex[i]);
    for (int64_t i = 0; i < set->n_contexts; i++) free(set->contexts[i]);
    free(set->ex);
    free(set->contexts);
    free(set->version);
    memset(set, 0, sizeof *set);
}

int64_t qb_squad_find(const qb_squad_set *set, const char *id) {
    for (int64_t i = 0; i < set->n; i++)
        if (strcmp(set->ex[i].id, id) == 0) return i;
    return -1;
}

void qb_squad_keep_first(qb_squad_set *set, int64_t n) {
    if (n < 0 || n >= set->n) return;
    for (int64_t i = n; i < set->n; i++) free_example(&set->ex[i]);
    set->n = n;
}

/* squad_data.c: see squad_data.h. */
#include "train/squad_data.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <zlib.h>

#include "base/fileio.h"
#include "base/json.h"
#include "text/utf8.h"

typedef struct reader {
    const char *path;
    qb_squad_set *set;
    int64_t cap_ex, cap_ctx;
    json_t *ids;    /* question id -> where it was first seen ("data[a].paragraphs[p].qas[q]") */
} reader;

/* "missing key K" when v is absent, else "key K: expected WANT, got <kind>"; returns 1 (a bad example). */
static int bad_key(char *msg, size_t cap, const char *key, const json_t *v, const char *want) {
    if (!v) snprintf(msg, cap, "missing key %s", key);
    else snprintf(msg, cap, "key %s: expected %s, got %s", key, want, qb_json_kind(v));
    return 1;
}

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
    if (!json_is_array(arr)) return bad_key(msg, msg_cap, key, arr, "an array");
    size_t n = json_array_size(arr);
    if (n == 0) return 0;
    qb_squad_answer *a = calloc(n, sizeof *a);
    if (!a) { snprintf(msg, msg_cap, "out of memory"); return -1; }
    *out = a;
    size_t i;
    json_t *ans;
    json_array_foreach(arr, i, ans) {
        char where[64];
        snprintf(where, sizeof where, "%s[%zu]: ", key, i);
        size_t wl = strlen(where);
        if (!json_is_object(ans)) { snprintf(msg, msg_cap, "%sexpected an object, got %s", where, qb_json_kind(ans)); return 1; }
        json_t *text = json_object_get(ans, "text"), *start = json_object_get(ans, "answer_start");
        if (!json_is_string(text)) return snprintf(msg, msg_cap, "%s", where), bad_key(msg + wl, msg_cap - wl, "text", text, "a string");
        if (!json_is_integer(start))
            return snprintf(msg, msg_cap, "%s", where), bad_key(msg + wl, msg_cap - wl, "answer_start", start, "an integer");
        json_int_t s = json_integer_value(start);
        const char *t = json_string_value(text);
        size_t tl = json_string_length(text);
        int64_t t_chars = qb_utf8_count(t, tl);
        if (s < 0 || s > ctx_chars || t_chars > ctx_chars - s) {  /* (s + t_chars could overflow) */
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
    if (!json_is_object(qa)) { snprintf(msg, msg_cap, "expected an object, got %s", qb_json_kind(qa)); return 1; }
    if (!json_is_string(id)) return bad_key(msg, msg_cap, "id", id, "a string");
    e->id = strdup(json_string_value(id));
    if (!e->id) return -1;
    if (!ctx) { snprintf(msg, msg_cap, "paragraph has no context string"); return 1; }
    if (!json_is_string(q)) return bad_key(msg, msg_cap, "question", q, "a string");
    if (imp && !json_is_boolean(imp)) return bad_key(msg, msg_cap, "is_impossible", imp, "true or false");
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

/* One paragraph object {context, qas} of article ai: its context and questions join the set. */
static int read_paragraph(reader *r, json_t *para, size_t ai, size_t pi, bool skip_bad, qb_err *err) {
    qb_squad_set *set = r->set;
    size_t qi;
    json_t *qa;
    json_t *ctx = json_object_get(para, "context"), *qas = json_object_get(para, "qas");
    char msg[200];
    if (!json_is_array(qas))
        return bad_key(msg, sizeof msg, "qas", qas, "an array"), qb_errorf(err, "%s: data[%zu].paragraphs[%zu]: %s", r->path, ai, pi, msg);
    if (ctx && !json_is_string(ctx) && !json_is_null(ctx))
        return bad_key(msg, sizeof msg, "context", ctx, "a string"), qb_errorf(err, "%s: data[%zu].paragraphs[%zu]: %s", r->path, ai, pi, msg);
    const char *c = json_is_string(ctx) ? json_string_value(ctx) : NULL;
    size_t c_len = c ? json_string_length(ctx) : 0;
    int64_t c_chars = c ? qb_utf8_count(c, c_len) : 0;
    if (c_chars > INT32_MAX)
        return qb_errorf(err, "%s: data[%zu].paragraphs[%zu]: context of %lld characters (at most 2^31 - 1)", r->path, ai, pi, (long long)c_chars);
    int64_t c_index = set->n_contexts;
    if (c) {
        if (grow((void **)&set->contexts, &r->cap_ctx, set->n_contexts + 1, sizeof *set->contexts))
            return qb_errorf(err, "%s: out of memory", r->path);
        set->contexts[set->n_contexts] = strndup(c, c_len);
        if (!set->contexts[set->n_contexts]) return qb_errorf(err, "%s: out of memory", r->path);
        set->n_contexts++;
    }
    json_array_foreach(qas, qi, qa) {
        if (grow((void **)&set->ex, &r->cap_ex, set->n + 1, sizeof *set->ex)) return qb_errorf(err, "%s: out of memory", r->path);
        qb_squad_example *e = &set->ex[set->n];
        int rc = read_question(qa, c, c_len, c_chars, c_index, e, msg, sizeof msg);
        if (rc < 0) {
            free_example(e);
            return qb_errorf(err, "%s: out of memory", r->path);
        }
        char where[160], at[96];
        snprintf(at, sizeof at, "data[%zu].paragraphs[%zu].qas[%zu]", ai, pi, qi);
        json_t *first = rc == 0 ? json_object_get(r->ids, e->id) : NULL;
        if (rc == 0 && !first) {
            if (json_object_set_new(r->ids, e->id, json_string(at))) {
                free_example(e);
                return qb_errorf(err, "%s: out of memory", r->path);
            }
            set->n++;
            continue;
        }
        if (first) {  /* SQuAD scores and predictions are keyed by id: a second question with it would be lost */
            snprintf(msg, sizeof msg, "question id %.60s appears twice (first at %s)", e->id, json_string_value(first));
            snprintf(where, sizeof where, "%s", at);
        } else if (e->id) {
            snprintf(where, sizeof where, "question id %.100s", e->id);
        } else {
            snprintf(where, sizeof where, "%s", at);
        }
        free_example(e);
        if (!skip_bad) return qb_errorf(err, "%s: %s: %s", r->path, where, msg);
        if (set->n_skipped < QB_SQUAD_SKIP_MSGS)
            snprintf(set->skip_msgs[set->n_skipped], sizeof set->skip_msgs[0], "%.100s: %.150s", where, msg);
        set->n_skipped++;
    }
    return 0;
}

/* ---- streaming: yajl events; each paragraph object is built as a jansson value, read, and freed, so memory holds
 * one paragraph of JSON at a time besides the compact set. */

typedef enum { ROLE_ROOT, ROLE_DATA, ROLE_ARTICLE, ROLE_PARAS, ROLE_BUILD, ROLE_OTHER } frame_role;

#define STREAM_MAX_DEPTH 64

typedef struct frame {
    frame_role role;
    bool is_map;
    char key[32];       /* last key of a map frame (truncated; only short keys matter) */
    json_t *value;      /* ROLE_BUILD: the container being built */
    char *build_key;    /* ROLE_BUILD map: the pending key (full) */
    bool seen;          /* ROOT: saw data; ARTICLE: saw paragraphs */
    size_t index;       /* DATA: articles so far; PARAS: paragraphs so far */
} frame;

typedef struct stream {
    reader r;
    bool skip_bad;
    qb_err *err;
    frame f[STREAM_MAX_DEPTH];
    int depth;
    bool failed;
} stream;

static frame *top(stream *s) { return s->depth > 0 ? &s->f[s->depth - 1] : NULL; }

static int fail(stream *s) {
    s->failed = true;
    return 0;
}

/* Attaches a built value to the building container on top (steals the reference). */
static int attach(stream *s, json_t *v) {
    frame *t = top(s);
    if (!v) return qb_errorf(s->err, "%s: out of memory", s->r.path), fail(s);
    int rc = t->is_map ? json_object_set_new(t->value, t->build_key ? t->build_key : "", v) : json_array_append_new(t->value, v);
    free(t->build_key);
    t->build_key = NULL;
    return rc ? (qb_errorf(s->err, "%s: out of memory", s->r.path), fail(s)) : 1;
}

/* A scalar value event (v owned, may be NULL for a non-string scalar we only need to see). */
static int on_scalar(stream *s, json_t *v, const char *str, size_t len) {
    frame *t = top(s);
    if (!t) return json_decref(v), qb_errorf(s->err, "%s: expected a JSON object with keys version and data", s->r.path), fail(s);
    if (t && t->role == ROLE_BUILD) return attach(s, v);
    if (t && t->role == ROLE_ROOT && strcmp(t->key, "version") == 0 && str) {
        free(s->r.set->version);
        s->r.set->version = strndup(str, len);
        if (!s->r.set->version) return json_decref(v), qb_errorf(s->err, "%s: out of memory", s->r.path), fail(s);
    }
    if (t && t->role == ROLE_ROOT && strcmp(t->key, "data") == 0)
        return json_decref(v), qb_errorf(s->err, "%s: missing key data (an array of articles)", s->r.path), fail(s);
    if (t && t->role == ROLE_ARTICLE && strcmp(t->key, "paragraphs") == 0)
        return json_decref(v), qb_errorf(s->err, "%s: data[%zu]: missing key paragraphs", s->r.path, s->f[1].index - 1), fail(s);
    json_decref(v);
    return 1;
}

static int cb_null(void *u) { return on_scalar(u, json_null(), NULL, 0); }
static int cb_bool(void *u, int b) { return on_scalar(u, json_boolean(b), NULL, 0); }
static int cb_int(void *u, long long v) { return on_scalar(u, json_integer(v), NULL, 0); }
static int cb_double(void *u, double v) { return on_scalar(u, json_real(v), NULL, 0); }
static int cb_string(void *u, const unsigned char *str, size_t len) {
    return on_scalar(u, json_stringn((const char *)str, len), (const char *)str, len);
}

static int cb_key(void *u, const unsigned char *key, size_t len) {
    stream *s = u;
    frame *t = top(s);
    snprintf(t->key, sizeof t->key, "%.*s", (int)(len < sizeof t->key ? len : sizeof t->key - 1), (const char *)key);
    if (t->role == ROLE_ROOT && strcmp(t->key, "data") == 0) t->seen = true;
    if (t->role == ROLE_ARTICLE && strcmp(t->key, "paragraphs") == 0) t->seen = true;
    if (t->role == ROLE_BUILD) {
        free(t->build_key);
        t->build_key = strndup((const char *)key, len);
        if (!t->build_key) return qb_errorf(s->err, "%s: out of memory", s->r.path), fail(s);
    }
    return 1;
}

static int start_container(stream *s, bool is_map) {
    if (s->depth == STREAM_MAX_DEPTH) return qb_errorf(s->err, "%s: JSON nested deeper than %d", s->r.path, STREAM_MAX_DEPTH), fail(s);
    frame *p = top(s);
    frame n = {.is_map = is_map, .role = ROLE_OTHER};
    if (!p) {
        if (!is_map) return qb_errorf(s->err, "%s: expected a JSON object with keys version and data", s->r.path), fail(s);
        n.role = ROLE_ROOT;
    } else if (p->role == ROLE_ROOT && strcmp(p->key, "data") == 0) {
        if (is_map) return qb_errorf(s->err, "%s: missing key data (an array of articles)", s->r.path), fail(s);
        n.role = ROLE_DATA;
    } else if (p->role == ROLE_DATA) {
        n.role = is_map ? ROLE_ARTICLE : ROLE_OTHER;
        p->index++;
    } else if (p->role == ROLE_ARTICLE && strcmp(p->key, "paragraphs") == 0) {
        if (is_map) return qb_errorf(s->err, "%s: data[%zu]: missing key paragraphs", s->r.path, s->f[1].index - 1), fail(s);
        n.role = ROLE_PARAS;
    } else if (p->role == ROLE_PARAS || p->role == ROLE_BUILD) {
        n.role = ROLE_BUILD;
        n.value = is_map ? json_object() : json_array();
        if (!n.value) return qb_errorf(s->err, "%s: out of memory", s->r.path), fail(s);
        if (p->role == ROLE_PARAS) p->index++;
    }
    s->f[s->depth++] = n;
    return 1;
}

static int end_container(stream *s) {
    frame t = s->f[--s->depth];
    frame *p = top(s);
    free(t.build_key);
    if (t.role == ROLE_ROOT && !t.seen) return qb_errorf(s->err, "%s: missing key data (an array of articles)", s->r.path), fail(s);
    if (t.role == ROLE_ARTICLE && !t.seen)
        return qb_errorf(s->err, "%s: data[%zu]: missing key paragraphs", s->r.path, s->f[1].index - 1), fail(s);
    if (t.role != ROLE_BUILD) return 1;
    if (p->role == ROLE_BUILD) return attach(s, t.value);
    /* a whole paragraph: data[ai].paragraphs[pi] */
    int rc = json_is_object(t.value) ? read_paragraph(&s->r, t.value, s->f[1].index - 1, p->index - 1, s->skip_bad, s->err)
                                     : qb_errorf(s->err, "%s: data[%zu].paragraphs[%zu]: expected an object", s->r.path,
                                                 s->f[1].index - 1, p->index - 1);
    json_decref(t.value);
    return rc ? fail(s) : 1;
}

static int cb_start_map(void *u) { return start_container(u, true); }
static int cb_start_array(void *u) { return start_container(u, false); }
static int cb_end(void *u) { return end_container(u); }

static const yajl_callbacks squad_callbacks = {cb_null, cb_bool, cb_int, cb_double, NULL, cb_string,
                                               cb_start_map, cb_key, cb_end, cb_start_array, cb_end};

static void stream_cleanup(stream *s) {
    while (s->depth > 0) {
        frame *t = &s->f[--s->depth];
        free(t->build_key);
        if (t->role == ROLE_BUILD) json_decref(t->value);  /* containers attach to their parent only when they end */
    }
}

/* Line and column (1-based) of byte `at` of chunk buf, given the lines already seen before the chunk. */
static void locate(const char *buf, size_t at, int64_t lines_before, int64_t col_before, int64_t *line, int64_t *col) {
    *line = lines_before;
    *col = col_before;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Length of a prefix of buf[0..n) that ends on a whole UTF-8 sequence (at most 3 bytes are held back). */
static size_t whole_utf8_prefix(const char *buf, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)buf[n - back];
        if ((c & 0xC0) == 0x80) continue;                            /* continuation byte: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;                         /* an incomplete sequence starts here */
    }
    return n;
}

int qb_squad_read(const char *path, bool skip_bad, qb_squad_set *set, qb_err *err) {
    memset(set, 0, sizeof *set);
    gzFile gz = qb_gzopen_regular(path, err);  /* reads .gz and plain files alike */
    if (!gz) return -1;
    stream s = {.r = {.path = path, .set = set, .ids = json_object()}, .skip_bad = skip_bad, .err = err};
    yajl_handle h = yajl_alloc(&squad_callbacks, NULL, &s);
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK + 4);
    if (!h || !buf || !s.r.ids) {
        if (h) yajl_free(h);
        free(buf);
        json_decref(s.r.ids);
        gzclose(gz);
        return qb_errorf(err, "%s: out of memory", path);
    }
    int64_t offset = 0, line = 1, col = 1;  /* of buf[0] in the file */
    size_t held = 0;                         /* bytes of an incomplete UTF-8 sequence carried to the next chunk */
    int rc = 0;
    for (bool eof = false; !rc && !eof;) {
        int got = gzread(gz, buf + held, CHUNK);
        if (got < 0) {
            int zerr;
            rc = qb_errorf(err, "%s: read error at byte %lld: %s", path, (long long)offset, gzerror(gz, &zerr));
            break;
        }
        eof = got == 0;
        size_t n = held + (size_t)got, use = eof ? n : whole_utf8_prefix(buf, n);
        int64_t bad = qb_utf8_invalid_offset(buf, use);
        if (bad >= 0) {
            rc = qb_errorf(err, "%s: invalid UTF-8 at byte offset %lld", path, (long long)(offset + bad));
            break;
        }
        yajl_status st = eof ? yajl_complete_parse(h) : yajl_parse(h, (const unsigned char *)buf, use);
        if (st == yajl_status_client_canceled || s.failed) {
            rc = -1;
        } else if (st != yajl_status_ok) {
            size_t at = eof ? 0 : yajl_get_bytes_consumed(h);
            unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)buf, use);
            int64_t l, c;
            locate(buf, at, line, col, &l, &c);
            char text[200];
            snprintf(text, sizeof text, "%s", msg ? (const char *)msg : "malformed JSON");
            for (char *q = text; *q; q++)
                if (*q == '\n') *q = ' ';
            rc = qb_errorf(err, "%s: line %lld column %lld (byte offset %lld): %s", path, (long long)l, (long long)c,
                           (long long)(offset + (int64_t)at), eof ? "unexpected end of input" : text);
            if (msg) yajl_free_error(h, msg);
        }
        if (!eof) {
            locate(buf, use, line, col, &line, &col);
            offset += (int64_t)use;
            held = n - use;
            memmove(buf, buf + use, held);
        }
    }
    stream_cleanup(&s);
    json_decref(s.r.ids);
    yajl_free(h);
    free(buf);
    gzclose(gz);
    if (!rc && !set->version && !(set->version = strdup(""))) rc = qb_errorf(err, "%s: out of memory", path);
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

/* tokenizer.c: see tokenizer.h. */
#include "text/tokenizer.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/json.h"
#include "text/utf8.h"

typedef struct special_names {
    char unk[64], cls[64], sep[64], pad[64], mask[64];
} special_names;

/* Present at all: a FIFO or device under the name is then refused by the reader, not taken for absent. */
static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A length limit at key: absent or null keeps *out; an integer above INT32_MAX (transformers writes
 * VERY_LARGE_INTEGER = 1e30 for none) is no limit, INT32_MAX here. */
static int get_limit(json_t *obj, const char *key, int64_t lo, int64_t *out, const char *path, const char *where, qb_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (qb_json_is_integral(v) && json_number_value(v) > INT32_MAX) {
        *out = INT32_MAX;
        return 0;
    }
    char name[128];
    snprintf(name, sizeof name, "%s%s", where, key);
    return qb_json_int(v, lo, INT32_MAX, out, path, name, err);
}

/* Reads a bool key; null or absent keeps *out. */
static int get_bool(json_t *obj, const char *key, bool *out, const char *path, const char *where, qb_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return qb_errorf(err, "%s: key %s%s: expected true or false", path, where, key);
    *out = json_is_true(v);
    return 0;
}

/* A special token is a string or an object with "content". */
static int get_special(json_t *obj, const char *key, char *out, size_t cap, const char *path, qb_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return qb_errorf(err, "%s: key %s: expected a token string shorter than %zu bytes", path, key, cap);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int add_token(qb_tokenizer *t, const char *s, int32_t id, const char *path, qb_err *err) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return 0;
    qb_added_token *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return qb_errorf(err, "out of memory");
    t->added = a;
    qb_added_token *x = &t->added[t->n_added];
    memset(x, 0, sizeof *x);
    int64_t cap = 0;
    if (qb_utf8_decode(s, strlen(s), &x->cps, &cap, &x->n, err)) return qb_err_context(err, "%s: added token", path);
    x->id = id;
    t->n_added++;
    return 0;
}

static int finish(qb_tokenizer *t, const special_names *sp, const char *path, bool add_specials, qb_err *err) {
    const char *names[5] = {sp->unk, sp->cls, sp->sep, sp->pad, sp->mask};
    int32_t *ids[5] = {&t->unk_id, &t->cls_id, &t->sep_id, &t->pad_id, &t->mask_id};
    for (int i = 0; i < 5; i++) {
        *ids[i] = qb_vocab_find(&t->vocab, names[i], strlen(names[i]));
        if (*ids[i] < 0) return qb_errorf(err, "%s: special token \"%s\" is not in the vocabulary", path, names[i]);
        if (add_specials && add_token(t, names[i], *ids[i], path, err)) return -1;
    }
    t->wp.vocab = &t->vocab;
    t->wp.prefix = t->prefix;
    t->wp.prefix_len = strlen(t->prefix);
    t->wp.unk_id = t->unk_id;
    return 0;
}

static void defaults(qb_tokenizer *t, special_names *sp) {
    memset(t, 0, sizeof *t);
    t->norm = (qb_bert_norm_opts){.clean_text = true, .handle_chinese_chars = true, .strip_accents = true, .lowercase = true};
    t->wp.max_input_chars_per_word = 100;
    strcpy(t->prefix, "##");
    strcpy(sp->unk, "[UNK]");
    strcpy(sp->cls, "[CLS]");
    strcpy(sp->sep, "[SEP]");
    strcpy(sp->pad, "[PAD]");
    strcpy(sp->mask, "[MASK]");
}

int qb_tokenizer_from_vocab(qb_tokenizer *t, const char *vocab_path, bool lowercase, qb_err *err) {
    special_names sp;
    defaults(t, &sp);
    t->norm.lowercase = t->norm.strip_accents = lowercase;
    if (qb_vocab_load_txt(&t->vocab, vocab_path, err) || finish(t, &sp, vocab_path, true, err)) {
        qb_tokenizer_free(t);
        return -1;
    }
    return 0;
}

/* tokenizer_config.json: the normaliser's do_lower_case, strip_accents (null: as do_lower_case) and
 * tokenize_chinese_chars, which BertTokenizer applies over tokenizer.json's too; special tokens; model_max_length. */
static int read_config(qb_tokenizer *t, special_names *sp, const char *path, qb_err *err) {
    json_t *cfg = qb_json_load_file(path, err);
    if (!cfg) return -1;
    int rc = 0;
    if (!json_is_object(cfg)) rc = qb_errorf(err, "%s: expected a JSON object", path);
    bool strip = false;
    int64_t max_len = 0;
    if (!rc)
        rc = get_bool(cfg, "do_lower_case", &t->norm.lowercase, path, "", err) ||
             get_bool(cfg, "tokenize_chinese_chars", &t->norm.handle_chinese_chars, path, "", err) ||
             get_bool(cfg, "strip_accents", &strip, path, "", err) || get_limit(cfg, "model_max_length", 1, &max_len, path, "", err);
    json_t *sa = json_object_get(cfg, "strip_accents");
    t->norm.strip_accents = sa && json_is_boolean(sa) ? strip : t->norm.lowercase;
    t->model_max_length = max_len < INT32_MAX ? max_len : 0;
    if (!rc)
        rc = get_special(cfg, "unk_token", sp->unk, sizeof sp->unk, path, err) ||
             get_special(cfg, "cls_token", sp->cls, sizeof sp->cls, path, err) ||
             get_special(cfg, "sep_token", sp->sep, sizeof sp->sep, path, err) ||
             get_special(cfg, "pad_token", sp->pad, sizeof sp->pad, path, err) ||
             get_special(cfg, "mask_token", sp->mask, sizeof sp->mask, path, err);
    json_decref(cfg);
    return rc ? -1 : 0;
}

static int read_tokenizer_json(qb_tokenizer *t, special_names *sp, const char *path, qb_err *err) {
    json_t *root = qb_json_load_file(path, err);
    if (!root) return -1;
    int rc = 0;
    const char **toks = NULL;
    int32_t *ids = NULL;
    json_t *norm = json_object_get(root, "normalizer");
    json_t *pre = json_object_get(root, "pre_tokenizer");
    json_t *model = json_object_get(root, "model");
    json_t *vocab = model ? json_object_get(model, "vocab") : NULL;
    const char *ntype = norm ? json_string_value(json_object_get(norm, "type")) : NULL;
    const char *ptype = pre ? json_string_value(json_object_get(pre, "type")) : NULL;
    const char *mtype = model ? json_string_value(json_object_get(model, "type")) : NULL;
    if (!ntype || strcmp(ntype, "BertNormalizer") != 0) {
        rc = qb_errorf(err, "%s: key normalizer.type: expected \"BertNormalizer\"", path);
    } else if (!ptype || strcmp(ptype, "BertPreTokenizer") != 0) {
        rc = qb_errorf(err, "%s: key pre_tokenizer.type: expected \"BertPreTokenizer\"", path);
    } else if (!mtype || strcmp(mtype, "WordPiece") != 0) {
        rc = qb_errorf(err, "%s: key model.type: expected \"WordPiece\"", path);
    } else if (!json_is_object(vocab) || json_object_size(vocab) == 0) {
        rc = qb_errorf(err, "%s: key model.vocab: expected a non-empty object", path);
    }
    if (!rc) { /* lowercase, strip_accents and handle_chinese_chars are checked, but tokenizer_config.json's rule */
        bool unused = false;
        rc = get_bool(norm, "clean_text", &t->norm.clean_text, path, "normalizer.", err) ||
             get_bool(norm, "handle_chinese_chars", &unused, path, "normalizer.", err) ||
             get_bool(norm, "lowercase", &unused, path, "normalizer.", err) ||
             get_bool(norm, "strip_accents", &unused, path, "normalizer.", err);
    }
    if (!rc) {
        int64_t max_chars = t->wp.max_input_chars_per_word;
        rc = get_limit(model, "max_input_chars_per_word", 0, &max_chars, path, "model.", err);
        t->wp.max_input_chars_per_word = (int)max_chars;
        json_t *v = json_object_get(model, "continuing_subword_prefix");
        if (!rc && v && (!json_is_string(v) || json_string_length(v) >= sizeof t->prefix))
            rc = qb_errorf(err, "%s: key model.continuing_subword_prefix: expected a short string", path);
        else if (!rc && v) strcpy(t->prefix, json_string_value(v));
        if (!rc) rc = get_special(model, "unk_token", sp->unk, sizeof sp->unk, path, err);
    }
    if (!rc) {
        size_t n = json_object_size(vocab);
        toks = malloc(n * sizeof *toks);
        ids = malloc(n * sizeof *ids);
        if (!toks || !ids) rc = qb_errorf(err, "%s: out of memory", path);
        int32_t max_id = -1;
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach(vocab, key, val) {
            if (rc) break;
            int64_t id;
            char name[64];
            snprintf(name, sizeof name, "model.vocab.\"%.40s\"", key);
            if ((rc = qb_json_int(val, 0, QB_VOCAB_MAX_ID, &id, path, name, err))) break;
            toks[k] = key;
            ids[k] = (int32_t)id;
            if (ids[k] > max_id) max_id = ids[k];
            k++;
        }
        if (!rc && (size_t)max_id >= k)  /* WordPiece ids are 0..N-1; sparse ids would size the tables by the largest id */
            rc = qb_errorf(err, "key model.vocab: id %d with %zu tokens (ids must be 0..%zu)", (int)max_id, k, k - 1);
        if (!rc) rc = qb_vocab_build(&t->vocab, toks, ids, (int32_t)k, max_id + 1, err);
        if (rc) qb_err_context(err, "%s", path);
    }
    json_t *added = json_object_get(root, "added_tokens");
    if (!rc && added && !json_is_array(added)) rc = qb_errorf(err, "%s: key added_tokens: expected an array", path);
    size_t i;
    json_t *a;
    if (!rc && added) {
        json_array_foreach(added, i, a) {
            const char *content = json_string_value(json_object_get(a, "content"));
            int64_t id;
            char name[64];
            snprintf(name, sizeof name, "added_tokens[%zu].id", i);
            if (!content) {
                rc = qb_errorf(err, "%s: key added_tokens[%zu].content: expected a string", path, i);
                break;
            }
            if ((rc = qb_json_int(json_object_get(a, "id"), 0, QB_VOCAB_MAX_ID, &id, path, name, err))) break;
            if ((rc = add_token(t, content, (int32_t)id, path, err))) break;
        }
    }
    free(toks);
    free(ids);
    json_decref(root);
    return rc ? -1 : 0;
}

int qb_tokenizer_load(qb_tokenizer *t, const char *dir, qb_err *err) {
    special_names sp;
    defaults(t, &sp);
    char tj[4096], cfg[4096], vt[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(vt, sizeof vt, "%s/vocab.txt", dir);
    bool have_tj = file_exists(tj), have_cfg = file_exists(cfg);
    int rc;
    rc = have_cfg && read_config(t, &sp, cfg, err);
    if (!rc && have_tj) rc = read_tokenizer_json(t, &sp, tj, err) || finish(t, &sp, tj, t->n_added == 0, err);
    else if (!rc) rc = qb_vocab_load_txt(&t->vocab, vt, err) || finish(t, &sp, vt, true, err);
    if (rc) {
        qb_tokenizer_free(t);
        return -1;
    }
    return 0;
}

int qb_tokenizer_save_config(const qb_tokenizer *t, const char *src_config, int64_t max_positions, const char *path, qb_err *err) {
    json_t *cfg = src_config && file_exists(src_config) ? qb_json_load_file(src_config, err) : json_object();
    if (!cfg) return err->failed ? -1 : qb_errorf(err, "%s: out of memory", path);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return qb_errorf(err, "%s: expected a JSON object", src_config);
    }
    qb_json_integers_back(cfg);
    const char *keys[5] = {"unk_token", "cls_token", "sep_token", "pad_token", "mask_token"};
    int32_t ids[5] = {t->unk_id, t->cls_id, t->sep_id, t->pad_id, t->mask_id};
    int64_t max_len = t->model_max_length > 0 && t->model_max_length < max_positions ? t->model_max_length : max_positions;
    const qb_bert_norm_opts *n = &t->norm;
    int bad = json_object_set_new(cfg, "tokenizer_class", json_string("BertTokenizer")) ||
              json_object_set_new(cfg, "do_lower_case", json_boolean(n->lowercase)) ||
              json_object_set_new(cfg, "strip_accents", n->strip_accents == n->lowercase ? json_null() : json_boolean(n->strip_accents)) ||
              json_object_set_new(cfg, "tokenize_chinese_chars", json_boolean(n->handle_chinese_chars)) ||
              json_object_set_new(cfg, "model_max_length", json_integer(max_len));
    for (int i = 0; i < 5 && !bad; i++) {
        const char *name = ids[i] >= 0 && ids[i] < t->vocab.n ? t->vocab.tokens[ids[i]] : NULL;
        bad = !name || json_object_set_new(cfg, keys[i], json_string(name));
    }
    int rc = bad ? qb_errorf(err, "%s: out of memory", path) : qb_json_save(cfg, JSON_INDENT(2) | JSON_SORT_KEYS, path, err);
    json_decref(cfg);
    return rc;
}

/* Length of the longest added token matching cps at i, its index in *which; 0 when none. */
static int64_t match_added(const qb_tokenizer *t, const int32_t *cps, int64_t n, int64_t i, int *which) {
    int64_t best = 0;
    for (int k = 0; k < t->n_added; k++) {
        const qb_added_token *a = &t->added[k];
        if (a->n <= best || a->n > n - i || a->cps[0] != cps[i]) continue;
        if (memcmp(a->cps, cps + i, (size_t)a->n * sizeof *cps) == 0) {
            best = a->n;
            *which = k;
        }
    }
    return best;
}

static int segment(const qb_tokenizer *t, int64_t begin, int64_t end, qb_tokens *out, qb_err *err) {
    if (begin >= end) return 0;
    out->norm.n = 0;
    if (qb_bert_normalize(&t->norm, out->cps, begin, end, &out->norm, err)) return -1;
    return qb_wordpiece_tokenize(&t->wp, &out->norm, out, err);
}

int qb_tokenize(const qb_tokenizer *t, const char *text, size_t len, qb_tokens *out, qb_err *err) {
    out->n = 0;
    if (qb_utf8_decode(text, len, &out->cps, &out->cps_cap, &out->n_cps, err)) return -1;
    const int32_t *cps = out->cps;
    int64_t n = out->n_cps, seg = 0;
    bool first_cp[128] = {false};
    bool any_wide = false;
    for (int k = 0; k < t->n_added; k++) {
        if (t->added[k].n == 0) continue;
        if (t->added[k].cps[0] < 128) first_cp[t->added[k].cps[0]] = true;
        else any_wide = true;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t c = cps[i];
        if (c < 128 ? !first_cp[c] : !any_wide) continue;
        int which = -1;
        int64_t m = match_added(t, cps, n, i, &which);
        if (m == 0) continue;
        if (segment(t, seg, i, out, err)) return -1;
        if (qb_tokens_push(out, t->added[which].id, (int32_t)i, (int32_t)(i + m), err)) return -1;
        i += m - 1;
        seg = i + 1;
    }
    return segment(t, seg, n, out, err);
}

void qb_tokenizer_free(qb_tokenizer *t) {
    qb_vocab_free(&t->vocab);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].cps);
    free(t->added);
    memset(t, 0, sizeof *t);
}

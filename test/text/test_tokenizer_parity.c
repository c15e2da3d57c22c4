/* test_tokenizer_parity.c: token ids and character offsets equal to HF's fast BERT tokenizer on real SQuAD text
 * (fixtures from test/ref/gen_text_tokens.py), for the uncased MiniLM vocabulary and a cased one. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "check.h"
#include "text/tokenizer.h"

typedef struct squad_texts {
    json_t *dev, *train;   /* "data" arrays */
    json_t *dev_contexts;  /* array of strings */
    json_t *train_contexts;
    json_t *dev_questions; /* object: id -> question */
} squad_texts;

static json_t *load_json_gz(const char *path, qb_err *err) {
    char *data;
    size_t len;
    if (qb_read_file_maybe_gz(path, &data, &len, err)) return NULL;
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &je);
    free(data);
    if (!root) qb_errorf(err, "%s: line %d: %s", path, je.line, je.text);
    return root;
}

static void collect(json_t *data, json_t *contexts, json_t *questions) {
    size_t i, j, k;
    json_t *art, *para, *qa;
    json_array_foreach(data, i, art) {
        json_array_foreach(json_object_get(art, "paragraphs"), j, para) {
            json_array_append(contexts, json_object_get(para, "context"));
            if (!questions) continue;
            json_array_foreach(json_object_get(para, "qas"), k, qa) {
                json_object_set(questions, json_string_value(json_object_get(qa, "id")), json_object_get(qa, "question"));
            }
        }
    }
}

static int load_squad(squad_texts *s, const char *dir, qb_err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s/dev-v1.1.json.gz", dir);
    s->dev = load_json_gz(p, err);
    if (!s->dev) return -1;
    snprintf(p, sizeof p, "%s/train-v1.1.json.gz", dir);
    s->train = load_json_gz(p, err);
    if (!s->train) return -1;
    s->dev_contexts = json_array();
    s->train_contexts = json_array();
    s->dev_questions = json_object();
    collect(json_object_get(s->dev, "data"), s->dev_contexts, s->dev_questions);
    collect(json_object_get(s->train, "data"), s->train_contexts, NULL);
    return 0;
}

static json_t *item_text(const squad_texts *s, json_t *item) {
    const char *src = json_string_value(json_object_get(item, "src"));
    if (!src) return NULL;
    if (strcmp(src, "text") == 0) return json_object_get(item, "text");
    if (strcmp(src, "dev-context") == 0)
        return json_array_get(s->dev_contexts, (size_t)json_integer_value(json_object_get(item, "index")));
    if (strcmp(src, "train-context") == 0)
        return json_array_get(s->train_contexts, (size_t)json_integer_value(json_object_get(item, "index")));
    if (strcmp(src, "dev-question") == 0)
        return json_object_get(s->dev_questions, json_string_value(json_object_get(item, "id")));
    return NULL;
}

static void parity(qb_check *c, const squad_texts *s, const char *name) {
    char dir[512], fix[512];
    snprintf(dir, sizeof dir, "test/text/fixtures/%s", name);
    snprintf(fix, sizeof fix, "test/text/fixtures/tokens-%s.json.gz", name);
    qb_err err = {0};
    qb_tokenizer tok;
    if (!CHECK(c, qb_tokenizer_load(&tok, qb_test_path(dir), &err) == 0, "load %s: %s", name, err.msg)) return;
    json_t *root = load_json_gz(qb_test_path(fix), &err);
    if (!CHECK(c, root != NULL, "%s", err.msg)) { qb_tokenizer_free(&tok); return; }
    json_t *items = json_object_get(root, "items");
    qb_tokens toks = {0};
    long n_texts = 0, n_equal = 0, n_tokens = 0, n_non_ascii = 0, shown = 0;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *jt = item_text(s, item);
        if (!CHECK(c, json_is_string(jt), "%s: item %zu: text not found", fix, i)) continue;
        const char *text = json_string_value(jt);
        size_t text_len = json_string_length(jt);
        n_texts++;
        for (size_t p = 0; p < text_len; p++)
            if ((unsigned char)text[p] >= 0x80) { n_non_ascii++; break; }
        json_t *ids = json_object_get(item, "ids"), *offs = json_object_get(item, "offsets");
        qb_err e = {0};
        int rc = qb_tokenize(&tok, text, text_len, &toks, &e);
        bool same = rc == 0 && (size_t)toks.n == json_array_size(ids) && 2 * (size_t)toks.n == json_array_size(offs);
        int64_t bad = -1;
        for (int64_t k = 0; same && k < toks.n; k++) {
            if (toks.ids[k] != json_integer_value(json_array_get(ids, (size_t)k)) ||
                toks.start[k] != json_integer_value(json_array_get(offs, (size_t)(2 * k))) ||
                toks.end[k] != json_integer_value(json_array_get(offs, (size_t)(2 * k + 1)))) {
                same = false;
                bad = k;
            }
        }
        n_tokens += (long)json_array_size(ids);
        if (same) { n_equal++; continue; }
        if (shown++ < 5) {
            printf("MISMATCH %s item %zu (%s): rc=%d n=%ld want %zu, first difference at token %ld\n", name, i,
                   json_string_value(json_object_get(item, "src")), rc, (long)toks.n, json_array_size(ids), (long)bad);
            if (bad >= 0)
                printf("  got id %d [%d,%d) want id %lld [%lld,%lld)\n", toks.ids[bad], toks.start[bad], toks.end[bad],
                       json_integer_value(json_array_get(ids, (size_t)bad)),
                       json_integer_value(json_array_get(offs, (size_t)(2 * bad))),
                       json_integer_value(json_array_get(offs, (size_t)(2 * bad + 1))));
        }
    }
    printf("%s: %ld/%ld texts identical (ids and offsets), %ld HF tokens, %ld texts with non-ASCII characters\n", name,
           n_equal, n_texts, n_tokens, n_non_ascii);
    CHECK(c, n_texts >= 4000 && n_equal == n_texts, "%s: %ld of %ld texts differ", name, n_texts - n_equal, n_texts);
    qb_tokens_free(&toks);
    json_decref(root);
    qb_tokenizer_free(&tok);
}

int main(void) {
    qb_check c = {0};
    const char *dir = qb_test_data_dir("QB_SQUAD_DIR");
    if (!dir) return 77;
    squad_texts s = {0};
    qb_err err = {0};
    if (!CHECK(&c, load_squad(&s, dir, &err) == 0, "%s", err.msg)) return qb_check_finish(&c, "text tokenizer parity");
    parity(&c, &s, "minilm-uncased");
    parity(&c, &s, "squad-cased");
    json_decref(s.dev);
    json_decref(s.train);
    json_decref(s.dev_contexts);
    json_decref(s.train_contexts);
    json_decref(s.dev_questions);
    return qb_check_finish(&c, "text tokenizer parity");
}

/* test_squad_postprocess.c: predictions and n-best lists equal to HF utils_qa.postprocess_qa_predictions on
 * 300 dev-v1.1 examples and 300 v2.0 examples at 128/32 (fixtures from test/ref/gen_squad_postprocess.py),
 * and the JSON files it writes. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "check.h"
#include "fixture.h"
#include "train/squad_postprocess.h"

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The generator's logits: a permutation of 0..n-1 (seed 2*feature+kind+1) mapped to (p - n/2) / 8. */
static void make_logits(int64_t feature, int kind, int n, float *out) {
    uint64_t state = (uint64_t)(2 * feature + kind + 1);
    int *perm = malloc((size_t)n * sizeof *perm);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(splitmix64(&state) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < n; i++) out[i] = (float)((perm[i] - n / 2) / 8.0);
    free(perm);
}

static json_t *load_gz(const char *rel, qb_err *err) {
    char *buf;
    size_t len;
    if (qb_read_file_maybe_gz(qb_test_path(rel), &buf, &len, err)) return NULL;
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!root) qb_errorf(err, "%s: line %d: %s", rel, je.line, je.text);
    return root;
}

static void check_run(qb_check *c, const qb_tokenizer *tok, const qb_squad_set *set, json_t *cfg, json_t *run,
                      const char *outdir) {
    qb_err err = {0};
    bool v2 = json_is_true(json_object_get(run, "version_2"));
    json_t *exs = json_object_get(run, "examples");
    int64_t n = (int64_t)json_array_size(exs);
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) {
        idx[i] = qb_squad_find(set, json_string_value(json_object_get(json_array_get(exs, (size_t)i), "id")));
        CHECK(c, idx[i] >= 0, "example %ld found", (long)i);
    }
    qb_squad_feature_opts fo = {.max_seq_length = (int)json_integer_value(json_object_get(cfg, "max_seq_length")),
                                .doc_stride = (int)json_integer_value(json_object_get(cfg, "doc_stride"))};
    qb_squad_features f = {0};
    if (!CHECK(c, qb_squad_features_build(tok, set, idx, n, &fo, &f, &err) == 0, "%s", err.msg)) { free(idx); return; }
    CHECK(c, f.n == json_integer_value(json_object_get(run, "n_features")), "v2=%d: %ld features", v2, (long)f.n);
    int L = f.max_len;
    float *sl = malloc((size_t)(f.n * L) * sizeof *sl), *el = malloc((size_t)(f.n * L) * sizeof *el);
    for (int64_t i = 0; i < f.n; i++) {
        make_logits(i, 0, L, sl + i * L);
        make_logits(i, 1, L, el + i * L);
    }
    qb_squad_postprocess_opts o = {
        .n_best_size = (int)json_integer_value(json_object_get(cfg, "n_best_size")),
        .max_answer_length = (int)json_integer_value(json_object_get(cfg, "max_answer_length")), .version_2 = v2,
        .null_score_diff_threshold = (float)json_number_value(json_object_get(run, "null_score_diff_threshold"))};
    qb_squad_predictions p;
    if (CHECK(c, qb_squad_postprocess(set, &f, sl, el, &o, &p, &err) == 0, "%s", err.msg)) {
        int64_t same = 0, n_nbest = 0, n_empty = 0, shown = 0;
        for (int64_t i = 0; i < n && i < p.n; i++) {
            json_t *w = json_array_get(exs, (size_t)i), *nb = json_object_get(w, "nbest");
            const qb_squad_prediction *x = &p.p[i];
            const char *why = NULL;
            if (x->example != idx[i]) why = "example order";
            else if (strcmp(x->text, json_string_value(json_object_get(w, "prediction"))) != 0) why = "prediction text";
            else if ((size_t)x->n_nbest != json_array_size(nb)) why = "n-best length";
            else if (v2 && x->score_diff != (float)json_number_value(json_object_get(w, "score_diff"))) why = "score_diff";
            for (int32_t k = 0; !why && k < x->n_nbest; k++) {
                json_t *e = json_array_get(nb, (size_t)k);
                if (strcmp(x->nbest[k].text, json_string_value(json_object_get(e, "text"))) != 0) why = "n-best text";
                else if (x->nbest[k].start_logit != (float)json_number_value(json_object_get(e, "start_logit")) ||
                         x->nbest[k].end_logit != (float)json_number_value(json_object_get(e, "end_logit")))
                    why = "n-best logits";
                else if (fabs(x->nbest[k].probability - json_number_value(json_object_get(e, "probability"))) > 1e-6)
                    why = "n-best probability";
            }
            n_nbest += x->n_nbest;
            n_empty += x->text[0] == '\0';
            if (!why) { same++; continue; }
            if (shown++ < 5) printf("MISMATCH v2=%d example %ld (%s): %s; got \"%s\"\n", v2, (long)i, set->ex[idx[i]].id, why, x->text);
        }
        printf("v2=%d: %ld/%ld predictions identical to utils_qa (%ld features, %ld n-best entries, %ld empty answers)\n", v2,
               (long)same, (long)n, (long)f.n, (long)n_nbest, (long)n_empty);
        CHECK(c, p.n == n && same == n, "v2=%d: %ld of %ld predictions differ", v2, (long)(n - same), (long)n);
        if (CHECK(c, qb_squad_predictions_write(set, &p, outdir, v2 ? "v2" : NULL, &err) == 0, "%s", err.msg)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%spredictions.json", outdir, v2 ? "v2_" : "");
            json_error_t je;
            json_t *back = json_load_file(path, 0, &je);
            bool ok = back && json_object_size(back) == (size_t)n;
            for (int64_t i = 0; ok && i < n; i++)
                ok = strcmp(json_string_value(json_object_get(back, set->ex[idx[i]].id)), p.p[i].text) == 0;
            CHECK(c, ok, "%s holds every prediction", path);
            json_decref(back);
            snprintf(path, sizeof path, "%s/%snbest_predictions.json", outdir, v2 ? "v2_" : "");
            back = json_load_file(path, 0, &je);
            CHECK(c, back && json_array_size(json_object_get(back, set->ex[idx[0]].id)) == (size_t)p.p[0].n_nbest,
                  "%s holds the n-best lists", path);
            json_decref(back);
            snprintf(path, sizeof path, "%s/%snull_odds.json", outdir, v2 ? "v2_" : "");
            CHECK(c, (access(path, F_OK) == 0) == v2, "null_odds.json written only for v2.0");
            unlink(path);
            snprintf(path, sizeof path, "%s/%spredictions.json", outdir, v2 ? "v2_" : "");
            unlink(path);
            snprintf(path, sizeof path, "%s/%snbest_predictions.json", outdir, v2 ? "v2_" : "");
            unlink(path);
        }
        qb_squad_predictions_free(&p);
    }
    free(sl);
    free(el);
    free(idx);
    qb_squad_features_free(&f);
}

int main(void) {
    qb_check c = {0};
    const char *dir = qb_test_data_dir("QB_SQUAD_DIR");
    if (!dir) return 77;
    qb_err err = {0};
    char path[4096];
    qb_squad_set dev, v2;
    snprintf(path, sizeof path, "%s/dev-v1.1.json.gz", dir);
    if (!CHECK(&c, qb_squad_read(path, false, &dev, &err) == 0, "%s", err.msg)) return qb_check_finish(&c, "squad postprocess");
    if (!CHECK(&c, qb_squad_read(qb_test_path("test/train/fixtures/squad-v2-mini.json.gz"), false, &v2, &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "squad postprocess");
    qb_tokenizer tok;
    json_t *root = load_gz("test/train/fixtures/postprocess-minilm-uncased.json.gz", &err);
    char outdir[] = "/tmp/qb_test_postprocess_XXXXXX";
    if (CHECK(&c, root != NULL, "%s", err.msg) &&
        CHECK(&c, qb_tokenizer_load(&tok, qb_test_path("test/text/fixtures/minilm-uncased"), &err) == 0, "%s", err.msg) &&
        CHECK(&c, mkdtemp(outdir) != NULL, "mkdtemp")) {
        json_t *runs = json_object_get(root, "runs");
        check_run(&c, &tok, &dev, root, json_array_get(runs, 0), outdir);
        check_run(&c, &tok, &v2, root, json_array_get(runs, 1), outdir);
        rmdir(outdir);
        qb_tokenizer_free(&tok);
    }
    json_decref(root);
    qb_squad_free(&dev);
    qb_squad_free(&v2);
    return qb_check_finish(&c, "squad postprocess");
}

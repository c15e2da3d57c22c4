/* test_squad_features.c: SQuAD features equal to HF run_qa's (fixtures from test/ref/gen_squad_features.py)
 * on 500 real examples at max_seq_length/doc_stride 384/128 and 128/32. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "check.h"
#include "train/squad_features.h"

static bool same_ints(json_t *arr, const int32_t *got, int64_t n) {
    if ((int64_t)json_array_size(arr) != n) return false;
    for (int64_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, (size_t)i)) != got[i]) return false;
    return true;
}

/* Compares one C feature with one fixture feature; returns a short reason or NULL. */
static const char *compare(const qb_squad_features *f, int64_t r, json_t *want, int32_t pad_id) {
    int L = f->max_len;
    const int32_t *ids = f->input_ids + r * L, *types = f->token_type_ids + r * L, *mask = f->attention_mask + r * L;
    const int32_t *offs = f->offsets + 2 * r * L;
    const int8_t *seq = f->sequence_ids + r * L;
    int64_t n = 0;
    while (n < L && mask[n]) n++;
    for (int64_t i = n; i < L; i++)
        if (mask[i] || ids[i] != pad_id || types[i] != 0 || offs[2 * i] || offs[2 * i + 1] || seq[i] != -1) return "padding";
    if (!same_ints(json_object_get(want, "input_ids"), ids, n)) return "input_ids";
    if (!same_ints(json_object_get(want, "token_type_ids"), types, n)) return "token_type_ids";
    if (!same_ints(json_object_get(want, "offsets"), offs, 2 * n)) return "offsets";
    json_t *ctx = json_object_get(want, "context");
    for (int64_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(ctx, (size_t)i)) != (seq[i] == 1)) return "context mask";
    if (json_integer_value(json_object_get(want, "start_position")) != f->start_positions[r]) return "start_position";
    if (json_integer_value(json_object_get(want, "end_position")) != f->end_positions[r]) return "end_position";
    return NULL;
}

int main(void) {
    qb_check c = {0};
    const char *dir = qb_test_data_dir("QB_SQUAD_DIR");
    if (!dir) return 77;
    char path[4096];
    qb_err err = {0};
    qb_squad_set dev, train;
    snprintf(path, sizeof path, "%s/dev-v1.1.json.gz", dir);
    if (!CHECK(&c, qb_squad_read(path, false, &dev, &err) == 0, "%s", err.msg)) return qb_check_finish(&c, "squad features");
    snprintf(path, sizeof path, "%s/train-v1.1.json.gz", dir);
    if (!CHECK(&c, qb_squad_read(path, false, &train, &err) == 0, "%s", err.msg)) return qb_check_finish(&c, "squad features");
    CHECK(&c, dev.n == 10570 && dev.n_contexts == 2067 && train.n == 87599 && train.n_contexts == 18896,
          "dev %ld questions / %ld contexts, train %ld / %ld", (long)dev.n, (long)dev.n_contexts, (long)train.n,
          (long)train.n_contexts);
    qb_tokenizer tok;
    if (!CHECK(&c, qb_tokenizer_load(&tok, qb_test_path("test/text/fixtures/minilm-uncased"), &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "squad features");
    char *buf;
    size_t len;
    json_t *root = NULL;
    if (qb_read_file_maybe_gz(qb_test_path("test/train/fixtures/features-minilm-uncased.json.gz"), &buf, &len, &err) == 0) {
        json_error_t je;
        root = json_loadb(buf, len, 0, &je);
        free(buf);
    }
    if (!CHECK(&c, root != NULL, "features fixture: %s", err.msg)) return qb_check_finish(&c, "squad features");
    json_t *examples = json_object_get(root, "examples");
    int64_t n_ex = (int64_t)json_array_size(examples), n_dev = 0;
    int64_t *dev_idx = malloc((size_t)n_ex * sizeof *dev_idx), *train_idx = malloc((size_t)n_ex * sizeof *train_idx);
    int64_t n_train = 0;
    size_t i;
    json_t *ex;
    json_array_foreach(examples, i, ex) {
        const char *src = json_string_value(json_object_get(ex, "src")), *id = json_string_value(json_object_get(ex, "id"));
        bool is_dev = strcmp(src, "dev") == 0;
        int64_t k = qb_squad_find(is_dev ? &dev : &train, id);
        CHECK(&c, k >= 0 && (is_dev ? n_train == 0 : true), "example %s found (dev examples first)", id);
        if (is_dev) dev_idx[n_dev++] = k;
        else train_idx[n_train++] = k;
    }
    json_t *cfg;
    json_array_foreach(json_object_get(root, "configs"), i, cfg) {
        qb_squad_feature_opts o = {.max_seq_length = (int)json_integer_value(json_object_get(cfg, "max_seq_length")),
                                   .doc_stride = (int)json_integer_value(json_object_get(cfg, "doc_stride"))};
        qb_squad_features fd = {0}, ft = {0};
        int rc = qb_squad_features_build(&tok, &dev, dev_idx, n_dev, &o, &fd, &err) ||
                 qb_squad_features_build(&tok, &train, train_idx, n_train, &o, &ft, &err);
        if (!CHECK(&c, rc == 0, "%s", err.msg)) continue;
        json_t *want = json_object_get(cfg, "features");
        int64_t n_want = (int64_t)json_array_size(want), n_same = 0, shown = 0, n_windows = 0, n_cls = 0;
        CHECK(&c, fd.n + ft.n == n_want, "%d/%d: %ld features, HF has %ld", o.max_seq_length, o.doc_stride,
              (long)(fd.n + ft.n), (long)n_want);
        for (int64_t r = 0; r < n_want && r < fd.n + ft.n; r++) {
            const qb_squad_features *f = r < fd.n ? &fd : &ft;
            int64_t rr = r < fd.n ? r : r - fd.n;
            json_t *w = json_array_get(want, (size_t)r);
            const char *why = compare(f, rr, w, tok.pad_id);
            int64_t wex = json_integer_value(json_object_get(w, "example"));
            int64_t got_ex = r < fd.n ? fd.example[rr] : ft.example[rr];
            int64_t want_ex = wex < n_dev ? dev_idx[wex] : train_idx[wex - n_dev];
            if (!why && got_ex != want_ex) why = "example mapping";
            n_windows += rr > 0 && (r < fd.n ? fd.example[rr - 1] : ft.example[rr - 1]) == got_ex;
            n_cls += f->start_positions[rr] == 0;
            if (!why) { n_same++; continue; }
            if (shown++ < 5) printf("MISMATCH %d/%d feature %ld: %s\n", o.max_seq_length, o.doc_stride, (long)r, why);
        }
        printf("%d/%d: %ld/%ld features identical to run_qa (%ld examples, %ld overflow windows, %ld CLS-labelled)\n",
               o.max_seq_length, o.doc_stride, (long)n_same, (long)n_want, (long)n_ex, (long)n_windows, (long)n_cls);
        CHECK(&c, n_same == n_want && n_want >= 500, "%d/%d: %ld of %ld features differ", o.max_seq_length, o.doc_stride,
              (long)(n_want - n_same), (long)n_want);
        qb_squad_features_free(&fd);
        qb_squad_features_free(&ft);
    }
    qb_squad_feature_opts oq = {.max_seq_length = 128, .doc_stride = 32, .max_query_length = 5};
    qb_squad_features fq = {0};
    if (CHECK(&c, qb_squad_features_build(&tok, &dev, dev_idx, n_dev, &oq, &fq, &err) == 0, "%s", err.msg)) {
        int64_t longest = 0;
        for (int64_t r = 0; r < fq.n; r++) {
            int64_t nq = 0;
            for (int k = 0; k < fq.max_len; k++) nq += fq.sequence_ids[r * fq.max_len + k] == 0;
            if (nq > longest) longest = nq;
        }
        CHECK(&c, longest == 5, "max_query_length 5 keeps at most 5 question tokens (longest %ld)", (long)longest);
    }
    qb_squad_features_free(&fq);
    qb_squad_set v2;
    if (CHECK(&c, qb_squad_read(qb_test_path("test/train/fixtures/squad-v2-mini.json.gz"), false, &v2, &err) == 0, "%s", err.msg)) {
        qb_squad_feature_opts o2 = {.max_seq_length = 128, .doc_stride = 32};
        qb_squad_features f2 = {0};
        if (CHECK(&c, qb_squad_features_build(&tok, &v2, NULL, 0, &o2, &f2, &err) == 0, "%s", err.msg)) {
            int64_t n_imp = 0, bad = 0;
            for (int64_t r = 0; r < f2.n; r++) {
                if (!v2.ex[f2.example[r]].is_impossible) continue;
                n_imp++;
                bad += f2.start_positions[r] != 0 || f2.end_positions[r] != 0;
            }
            CHECK(&c, n_imp > 0 && bad == 0, "v2.0 impossible questions point at [CLS] in all %ld windows", (long)n_imp);
        }
        qb_squad_features_free(&f2);
        qb_squad_free(&v2);
    }
    free(dev_idx);
    free(train_idx);
    json_decref(root);
    qb_tokenizer_free(&tok);
    qb_squad_free(&dev);
    qb_squad_free(&train);
    return qb_check_finish(&c, "squad features");
}

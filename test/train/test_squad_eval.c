/* test_squad_eval.c: EM/F1 equal (to 1e-9) to the official evaluate-v1.1 on a predictions file covering dev-v1.1,
 * and to evaluate-v2.0 on a v2.0 set made from dev (fixtures from test/ref/gen_squad_eval.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "check.h"
#include "fixture.h"
#include "train/squad_eval.h"

static void normalisation(qb_check *c) {
    const char *in[] = {"The  Big, (Apple)!", "an apple a day", "théatre", "the—end", "ΣΑΣ", "İ", "x\u00a0the\u2003y", "A_the"};
    const char *want[] = {"big apple", "apple day", "théatre", "—end", "σας", "i\u0307", "x y", "athe"};
    for (int i = 0; i < 8; i++) {
        char *out = NULL;
        qb_err err = {0};
        int rc = qb_squad_normalize_answer(in[i], &out, &err);
        CHECK(c, rc == 0 && strcmp(out, want[i]) == 0, "normalize_answer(\"%s\") = \"%s\", want \"%s\"", in[i],
              out ? out : err.msg, want[i]);
        free(out);
    }
}

static void v1(qb_check *c, const char *dir) {
    char path[4096];
    qb_err err = {0};
    qb_squad_set dev;
    snprintf(path, sizeof path, "%s/dev-v1.1.json.gz", dir);
    if (!CHECK(c, qb_squad_read(path, false, &dev, &err) == 0, "%s", err.msg)) return;
    char **preds = NULL;
    json_t *want = qb_fixture_load("test/train/fixtures/eval-dev-v1.1.json", &err);
    if (CHECK(c, want != NULL, "%s", err.msg) &&
        CHECK(c, qb_squad_pred_texts_load(qb_test_path("test/train/fixtures/predictions-dev-v1.1.json.gz"), &dev, &preds,
                                           &err) == 0, "%s", err.msg)) {
        int *em = malloc((size_t)dev.n * sizeof *em);
        double *f1 = malloc((size_t)dev.n * sizeof *f1);
        qb_squad_scores s;
        if (CHECK(c, qb_squad_evaluate_v1(&dev, preds, &s, em, f1, &err) == 0, "%s", err.msg)) {
            double w_em = json_real_value(json_object_get(want, "exact_match"));
            double w_f1 = json_real_value(json_object_get(want, "f1"));
            json_t *pe = json_object_get(want, "per_question_em"), *pf = json_object_get(want, "per_question_f1");
            int64_t same = 0, answered = 0;
            for (int64_t i = 0; i < dev.n; i++) {
                answered += preds[i] != NULL;
                bool ok = json_integer_value(json_array_get(pe, (size_t)i)) == em[i] &&
                          fabs(json_number_value(json_array_get(pf, (size_t)i)) - f1[i]) <= 1e-12;
                if (!ok && same + 5 > i)
                    printf("MISMATCH question %s: pred \"%s\" em %d f1 %.12g, official em %lld f1 %.12g\n", dev.ex[i].id,
                           preds[i] ? preds[i] : "(none)", em[i], f1[i], json_integer_value(json_array_get(pe, (size_t)i)),
                           json_number_value(json_array_get(pf, (size_t)i)));
                same += ok;
            }
            printf("v1.1 dev: EM %.12f F1 %.12f (official %.12f / %.12f), %ld/%ld questions identical, %ld answered\n",
                   s.exact, s.f1, w_em, w_f1, (long)same, (long)dev.n, (long)answered);
            CHECK(c, dev.n == 10570 && same == dev.n, "per-question EM/F1: %ld of %ld differ", (long)(dev.n - same), (long)dev.n);
            CHECK(c, fabs(s.exact - w_em) <= 1e-9 && fabs(s.f1 - w_f1) <= 1e-9, "v1.1 EM/F1 equal to the official script");
            CHECK(c, s.n_missing == dev.n - (int64_t)json_integer_value(json_object_get(want, "predictions")) && s.n_missing > 0,
                  "unanswered questions counted: %ld", (long)s.n_missing);
        }
        free(em);
        free(f1);
    }
    qb_squad_pred_texts_free(preds, dev.n);
    json_decref(want);
    qb_squad_free(&dev);
}

static void v2(qb_check *c) {
    qb_err err = {0};
    qb_squad_set set;
    if (!CHECK(c, qb_squad_read(qb_test_path("test/train/fixtures/squad-v2-mini.json.gz"), false, &set, &err) == 0, "%s",
               err.msg))
        return;
    int64_t n_imp = 0, n_plaus = 0;
    for (int64_t i = 0; i < set.n; i++) {
        n_imp += set.ex[i].is_impossible;
        n_plaus += set.ex[i].is_impossible && set.ex[i].n_plausible > 0 && set.ex[i].n_answers == 0;
    }
    CHECK(c, n_imp == 715 && n_plaus == n_imp && strcmp(set.version, "v2.0") == 0, "v2.0 reader: %ld impossible, %ld with plausible answers",
          (long)n_imp, (long)n_plaus);
    char **preds = NULL;
    json_t *want = qb_fixture_load("test/train/fixtures/eval-v2-mini.json", &err);
    if (CHECK(c, want != NULL, "%s", err.msg) &&
        CHECK(c, qb_squad_pred_texts_load(qb_test_path("test/train/fixtures/predictions-v2-mini.json.gz"), &set, &preds,
                                           &err) == 0, "%s", err.msg)) {
        qb_squad_scores s;
        if (CHECK(c, qb_squad_evaluate_v2(&set, preds, NULL, 1.0, &s, &err) == 0, "%s", err.msg)) {
            struct { const char *key; double got; } f[] = {
                {"exact", s.exact}, {"f1", s.f1}, {"total", (double)s.total},
                {"HasAns_exact", s.has_ans_exact}, {"HasAns_f1", s.has_ans_f1}, {"HasAns_total", (double)s.has_ans_total},
                {"NoAns_exact", s.no_ans_exact}, {"NoAns_f1", s.no_ans_f1}, {"NoAns_total", (double)s.no_ans_total}};
            for (int i = 0; i < 9; i++) {
                double w = json_number_value(json_object_get(want, f[i].key));
                CHECK(c, fabs(f[i].got - w) <= 1e-9, "v2.0 %s: %.12f, official %.12f", f[i].key, f[i].got, w);
            }
            printf("v2.0 mini: exact %.12f f1 %.12f HasAns %.6f/%.6f NoAns %.6f/%.6f total %ld\n", s.exact, s.f1,
                   s.has_ans_exact, s.has_ans_f1, s.no_ans_exact, s.no_ans_f1, (long)s.total);
            double *na = malloc((size_t)set.n * sizeof *na);
            for (int64_t i = 0; i < set.n; i++) na[i] = 1.0;
            qb_squad_scores all_na;
            qb_squad_evaluate_v2(&set, preds, na, 0.5, &all_na, &err);
            CHECK(c, fabs(all_na.no_ans_exact - 100.0) < 1e-12 && all_na.has_ans_exact == 0.0,
                  "na_prob above the threshold scores as a no-answer prediction");
            free(na);
        }
        /* --na-prob-file: probabilities with ties, threshold 0.5, and the best thresholds (find_all_best_thresh) */
        json_t *probs = NULL, *want_na = qb_fixture_load("test/train/fixtures/eval-v2-mini-na.json", &err);
        char *text = NULL;
        size_t len = 0;
        if (CHECK(c, want_na && qb_read_file_maybe_gz(qb_test_path("test/train/fixtures/na-probs-v2-mini.json.gz"), &text, &len, &err) == 0,
                  "%s", err.msg))
            probs = json_loadb(text, len, 0, NULL);
        free(text);
        double *na = malloc((size_t)set.n * sizeof *na);
        bool all = probs != NULL;
        for (int64_t i = 0; all && i < set.n; i++) {
            json_t *v = json_object_get(probs, set.ex[i].id);
            all = json_is_number(v);
            if (all) na[i] = json_number_value(v);
        }
        if (CHECK(c, all, "na_probs for every question") && CHECK(c, qb_squad_evaluate_v2(&set, preds, na, 0.5, &s, &err) == 0, "%s", err.msg)) {
            struct { const char *key; double got; } f[] = {
                {"exact", s.exact}, {"f1", s.f1}, {"HasAns_exact", s.has_ans_exact}, {"HasAns_f1", s.has_ans_f1},
                {"NoAns_exact", s.no_ans_exact}, {"NoAns_f1", s.no_ans_f1}, {"best_exact", s.best_exact},
                {"best_exact_thresh", s.best_exact_thresh}, {"best_f1", s.best_f1}, {"best_f1_thresh", s.best_f1_thresh}};
            for (int i = 0; i < 10; i++) {
                double w = json_number_value(json_object_get(want_na, f[i].key));
                CHECK(c, s.has_best && fabs(f[i].got - w) <= 1e-9, "v2.0 with na_probs %s: %.12f, official %.12f", f[i].key, f[i].got, w);
            }
            printf("v2.0 mini with na_probs: best_exact %.9f at %.2f, best_f1 %.9f at %.2f\n", s.best_exact, s.best_exact_thresh, s.best_f1,
                   s.best_f1_thresh);
        }
        free(na);
        json_decref(probs);
        json_decref(want_na);
    }
    qb_squad_pred_texts_free(preds, set.n);
    json_decref(want);
    qb_squad_free(&set);
}

int main(void) {
    qb_check c = {0};
    normalisation(&c);
    v2(&c);
    const char *dir = qb_test_data_dir("QB_SQUAD_DIR");
    if (!dir) return 77;
    v1(&c, dir);
    return qb_check_finish(&c, "squad eval");
}

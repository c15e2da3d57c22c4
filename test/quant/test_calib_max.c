/* test_calib_max.c: the max calibrator against modelopt's MaxCalibrator, upstream golden checks, merge, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "quant/quant.h"

static json_t *find_case(json_t *cases, const char *name) {
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        if (!strcmp(json_string_value(json_object_get(cs, "name")), name)) return cs;
    }
    return NULL;
}

/* Feeds every batch of a case to cm; returns 0 on success. */
static int feed(calib_max *cm, json_t *batches, qb_err *err) {
    for (size_t b = 0; b < json_array_size(batches); b++) {
        int nd;
        int64_t shape[4], n;
        float *x = qb_fixture_tensor(json_array_get(batches, b), &nd, shape, &n);
        if (!x) return qb_errorf(err, "malformed batch");
        int rc = calib_max_collect(cm, x, nd, shape, "test", err);
        free(x);
        if (rc) return rc;
    }
    return 0;
}

static double worst_rel = 0.0;

static void golden(qb_check *c, json_t *cs, json_t *hist_cases) {
    const char *name = json_string_value(json_object_get(cs, "name"));
    json_t *batches = json_object_get(cs, "batches");
    if (!batches) batches = json_object_get(find_case(hist_cases, name), "batches");
    int nd;
    int64_t shape[4], n;
    float *want = qb_fixture_tensor(json_object_get(cs, "amax"), &nd, shape, &n);
    calib_max cm;
    calib_max_init(&cm, (int)json_integer_value(json_object_get(cs, "axis")));
    qb_err err = {0};
    if (CHECK(c, want && batches && feed(&cm, batches, &err) == 0, "%s: collect: %s", name, err.msg)) {
        float *got = malloc((size_t)n * sizeof(float));
        if (CHECK(c, calib_max_compute(&cm, got, n, "test", &err) == 0, "%s: compute: %s", name, err.msg)) {
            char what[96];
            snprintf(what, sizeof what, "max amax %s", name);
            qb_check_close(c, what, got, want, n, 0.0, 1e-6);
            for (int64_t k = 0; k < n; k++)
                if (want[k] != 0.0f) worst_rel = fmax(worst_rel, fabs((double)got[k] - want[k]) / fabs(want[k]));
        }
        /* merging one calibrator per batch equals one calibrator over all batches */
        calib_max merged;
        calib_max_init(&merged, cm.axis);
        for (size_t b = 0; b < json_array_size(batches); b++) {
            calib_max part;
            calib_max_init(&part, cm.axis);
            json_t *one = json_pack("[O]", json_array_get(batches, b));
            feed(&part, one, &err);
            json_decref(one);
            calib_max_merge(&merged, &part, &err);
            calib_max_free(&part);
        }
        CHECK(c, merged.n == cm.n && !memcmp(merged.amax, cm.amax, (size_t)cm.n * sizeof(float)),
              "%s: merge of per-batch calibrators equals one calibrator", name);
        calib_max_free(&merged);
        free(got);
    }
    calib_max_free(&cm);
    free(want);
}

static void upstream(qb_check *c) {
    /* running max over 2 batches is exact; axis 0 on [31, 63, 7, 7] gives 31 values */
    const int64_t shape[4] = {31, 63, 7, 7}, n = 31 * 63 * 7 * 7;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        a[i] = (float)((int64_t)(s >> 40) % 2001 - 1000) / 100.0f;
        b[i] = a[i] * (i % 2 ? 1.5f : -0.5f);
    }
    float want[31];
    for (int r = 0; r < 31; r++) {
        want[r] = 0.0f;
        for (int64_t i = r * (n / 31); i < (r + 1) * (n / 31); i++) want[r] = fmaxf(want[r], fmaxf(fabsf(a[i]), fabsf(b[i])));
    }
    calib_max cm;
    calib_max_init(&cm, 0);
    qb_err err = {0};
    CHECK(c, calib_max_collect(&cm, a, 4, shape, "w", &err) == 0 && calib_max_collect(&cm, b, 4, shape, "w", &err) == 0,
          "collect [31,63,7,7]");
    CHECK(c, cm.n == 31 && !memcmp(cm.amax, want, sizeof want), "per-channel running max over 2 batches is exact");
    const int64_t other[4] = {30, 63, 7, 7};
    qb_err_clear(&err);
    CHECK(c, calib_max_collect(&cm, a, 4, other, "w", &err) != 0 && strstr(err.msg, "shape"), "shape change is an error");
    calib_max_free(&cm);
    free(a);
    free(b);
}

static void errors(qb_check *c) {
    calib_max cm;
    calib_max_init(&cm, -1);
    qb_err err = {0};
    float out;
    CHECK(c, calib_max_compute(&cm, &out, 1, "bert.layer.0.query._input_quantizer", &err) != 0 &&
                 strstr(err.msg, "no data") && strstr(err.msg, "query._input_quantizer"),
          "compute with no data is an error naming the quantizer (%s)", err.msg);
    float bad[4] = {1.0f, NAN, 2.0f, 3.0f};
    int64_t shape[1] = {4};
    qb_err_clear(&err);
    CHECK(c, calib_max_collect(&cm, bad, 1, shape, "q7", &err) != 0 && strstr(err.msg, "q7") && strstr(err.msg, "NaN"),
          "NaN during calibration is an error naming the quantizer (%s)", err.msg);
    bad[1] = -INFINITY;
    qb_err_clear(&err);
    CHECK(c, calib_max_collect(&cm, bad, 1, shape, "q8", &err) != 0 && strstr(err.msg, "q8"), "Inf is an error");
    CHECK(c, cm.amax == NULL, "a rejected batch leaves the calibrator empty");
    calib_max_free(&cm);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/calib_max.json", &err);
    json_t *hroot = qb_fixture_load("test/quant/fixtures/calib_histogram.json", &err);
    if (CHECK(&c, root && hroot, "fixtures: %s", err.msg)) {
        json_t *cases = json_object_get(root, "cases");
        for (size_t k = 0; k < json_array_size(cases); k++)
            golden(&c, json_array_get(cases, k), json_object_get(hroot, "cases"));
        printf("largest max-calibrator deviation from modelopt: %.3g relative\n", worst_rel);
    }
    json_decref(root);
    json_decref(hroot);
    upstream(&c);
    errors(&c);
    return qb_check_finish(&c, "calib_max");
}

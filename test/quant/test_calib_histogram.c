/* test_calib_histogram.c: histogram collection and percentile / entropy / mse amax against modelopt's
 * HistogramCalibrator (torch_hist True = modelopt semantics, False = pytorch-quantization 2.1's numpy path),
 * upstream golden checks, exact and re-binned merges, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "quant/quant.h"

typedef struct worst {
    double percentile_rel, entropy_bins, mse_bins;
} worst;

static int feed(calib_histogram *h, json_t *batches, qb_err *err) {
    for (size_t b = 0; b < json_array_size(batches); b++) {
        int nd;
        int64_t shape[4], n;
        float *x = qb_fixture_tensor(json_array_get(batches, b), &nd, shape, &n);
        if (!x) return qb_errorf(err, "malformed batch");
        int rc = calib_histogram_collect(h, x, n, "test", err);
        free(x);
        if (rc) return rc;
    }
    return 0;
}

static void check_amax(qb_check *c, const char *label, json_t *ref, const calib_histogram *h, hist_amax_method m,
                       double pct, worst *w) {
    json_t *v = json_object_get(ref, strchr(label, '/') + 1);
    if (!json_is_number(v)) {
        qb_check_skip(c, label, "the reference fails on this histogram");
        return;
    }
    const double want = json_number_value(v);
    quant_desc d = quant_desc_default();
    d.percentile = pct;
    float got;
    qb_err err = {0};
    if (!CHECK(c, calib_histogram_compute_amax(h, m, &d, &got, "test", &err) == 0, "%s: %s", label, err.msg)) return;
    const double bin = fabs(h->edges[1] - h->edges[0]), diff = fabs(got - want);
    if (m == HIST_AMAX_PERCENTILE) {
        const double rel = want != 0.0 ? diff / fabs(want) : diff;
        w->percentile_rel = fmax(w->percentile_rel, rel);
        CHECK(c, rel <= 1e-6, "%s: amax %.9g, reference %.9g (rel %.3g)", label, (double)got, want, rel);
    } else {
        const double nb = bin > 0 ? diff / bin : diff;
        double *slot = m == HIST_AMAX_ENTROPY ? &w->entropy_bins : &w->mse_bins;
        *slot = fmax(*slot, nb);
        CHECK(c, diff <= bin * (1 + 1e-6) || diff == 0.0, "%s: amax %.9g, reference %.9g (%.3g bins)", label,
              (double)got, want, nb);
    }
}

static void golden(qb_check *c, json_t *cs, const char *sem_key, hist_semantics sem, worst *w) {
    char label[128];
    const char *name = json_string_value(json_object_get(cs, "name"));
    json_t *ref = json_object_get(cs, sem_key);
    quant_desc d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    d.hist_semantics = sem;
    d.skip_zeros = json_is_true(json_object_get(cs, "skip_zeros"));
    calib_histogram h;
    calib_histogram_init(&h, &d);
    qb_err err = {0};
    if (!CHECK(c, feed(&h, json_object_get(cs, "batches"), &err) == 0, "%s/%s: %s", name, sem_key, err.msg)) return;
    json_t *counts = json_object_get(ref, "counts");
    const int64_t nb = (int64_t)json_array_size(counts);
    if (CHECK(c, h.nbins == nb, "%s/%s: %lld bins, reference %lld", name, sem_key, (long long)h.nbins, (long long)nb)) {
        int64_t differ = 0, absdiff = 0;
        for (int64_t k = 0; k < nb; k++) {
            int64_t dlt = h.counts[k] - json_integer_value(json_array_get(counts, (size_t)k));
            differ += dlt != 0;
            absdiff += llabs(dlt);
        }
        CHECK(c, differ == 0, "%s/%s: counts differ in %lld bins (total |diff| %lld)", name, sem_key, (long long)differ,
              (long long)absdiff);
    }
    json_t *ei = json_object_get(ref, "edge_index"), *ev = json_object_get(ref, "edge_value");
    int64_t edge_bad = 0;
    for (size_t k = 0; k < json_array_size(ei); k++) {
        int64_t i = json_integer_value(json_array_get(ei, k));
        double want = json_number_value(json_array_get(ev, k));
        double got = i <= h.nbins ? h.edges[i] : h.hist_hi;
        edge_bad += fabs(got - want) > 1e-6 * fabs(want) + 1e-30;
    }
    CHECK(c, edge_bad == 0, "%s/%s: %lld sampled edges differ beyond 1e-6 relative", name, sem_key, (long long)edge_bad);
    static const struct { const char *key; hist_amax_method m; double p; } methods[] = {
        {"percentile_99_99", HIST_AMAX_PERCENTILE, 99.99}, {"percentile_99_9", HIST_AMAX_PERCENTILE, 99.9},
        {"percentile_99", HIST_AMAX_PERCENTILE, 99.0},      {"entropy", HIST_AMAX_ENTROPY, 0},
        {"mse", HIST_AMAX_MSE, 0}};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        snprintf(label, sizeof label, "%s %s/%s", name, sem_key, methods[k].key);
        check_amax(c, label, ref, &h, methods[k].m, methods[k].p, w);
    }
    calib_histogram_free(&h);
}

static float lcg_uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f;
}

static float hist_amax(const float *const *batches, const int64_t *ns, int nbatch, hist_amax_method m, double pct,
                       bool is_unsigned, bool skip_zeros) {
    quant_desc d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    d.percentile = pct;
    d.is_unsigned = is_unsigned;
    d.skip_zeros = skip_zeros;
    calib_histogram h;
    calib_histogram_init(&h, &d);
    qb_err err = {0};
    float a = NAN;
    for (int b = 0; b < nbatch; b++) calib_histogram_collect(&h, batches[b], ns[b], "u", &err);
    if (calib_histogram_compute_amax(&h, m, &d, &a, "u", &err)) a = NAN;
    calib_histogram_free(&h);
    return a;
}

/* The golden checks of pytorch-quantization's tests/calibrator_test.py. */
static void upstream(qb_check *c) {
    float r100[100], half[100];
    for (int i = 0; i < 100; i++) {
        r100[i] = (float)i;
        half[i] = (float)i * 0.5f;
    }
    const float *b1[1] = {r100}, *b2[2] = {r100, half};
    const int64_t n1[1] = {100}, n2[2] = {100, 100};
    float a = hist_amax(b1, n1, 1, HIST_AMAX_PERCENTILE, 90.0, false, false);
    CHECK(c, fabsf(a - 89.0f) < 100.0f / 1024.0f, "percentile 90 of arange(100) ~ 89 (%g)", (double)a);
    a = hist_amax(b1, n1, 1, HIST_AMAX_PERCENTILE, 80.0, true, false);
    CHECK(c, fabsf(a - 79.0f) < 100.0f / 1024.0f, "unsigned percentile 80 of arange(100) ~ 79 (%g)", (double)a);
    a = hist_amax(b2, n2, 2, HIST_AMAX_PERCENTILE, 99.0, false, false);
    CHECK(c, fabsf(a - 97.0f) < 100.0f / 1024.0f, "percentile 99 over two batches ~ 97 (%g)", (double)a);

    float u[694];
    uint64_t s = 7;
    for (int i = 0; i < 693; i++) u[i] = lcg_uniform(&s);
    u[693] = 10.0f;
    const float *bu[1] = {u};
    const int64_t nu[1] = {694};
    a = hist_amax(bu, nu, 1, HIST_AMAX_ENTROPY, 0, false, false);
    CHECK(c, a < 1.1f && a > 0.5f, "entropy ignores one outlier of 10 among U(0,1) (%g)", (double)a);

    float v[693];
    for (int i = 0; i < 692; i++) v[i] = 255.0f;
    v[692] = 256.0f;
    const float *bv[1] = {v};
    const int64_t nv[1] = {693};
    a = hist_amax(bv, nv, 1, HIST_AMAX_MSE, 0, false, false);
    CHECK(c, fabsf(a - 255.0f) < fabsf(a - 256.0f), "mse of 692 x 255 and one 256 is closer to 255 (%g)", (double)a);

    float z1[10] = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5}, z2[10] = {0, 0, 0, 0, 0, 6, 7, 8, 9, 10};
    const float *bz[2] = {z1, z2};
    const int64_t nz[2] = {10, 10};
    a = hist_amax(bz, nz, 2, HIST_AMAX_PERCENTILE, 50.0, false, true);
    CHECK(c, fabsf(a - 5.0f) < 10.0f / 1024.0f, "skip_zeros percentile 50 ~ 5 (%g)", (double)a);
}

/* Multi-process calibration: agree on the range by max-merge, collect on it, sum. */
static void merge_exact(qb_check *c, json_t *cs) {
    json_t *batches = json_object_get(cs, "batches");
    const int nb = (int)json_array_size(batches);
    float *data[8] = {0};
    int64_t n[8];
    int nd;
    int64_t shape[4];
    for (int b = 0; b < nb; b++) data[b] = qb_fixture_tensor(json_array_get(batches, b), &nd, shape, &n[b]);
    qb_err err = {0};
    quant_desc d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    calib_max global;
    calib_max_init(&global, -1);
    for (int b = 0; b < nb; b++) {
        calib_max part;
        calib_max_init(&part, -1);
        calib_max_collect(&part, data[b], 1, &n[b], "p", &err);
        calib_max_merge(&global, &part, &err);
        calib_max_free(&part);
    }
    const float range = global.amax[0];
    calib_histogram merged, single, first_max;
    calib_histogram_init(&merged, &d);
    calib_histogram_init(&single, &d);
    calib_histogram_init(&first_max, &d);
    calib_histogram_set_range(&single, range, &err);
    for (int b = 0; b < nb; b++) {
        calib_histogram part;
        calib_histogram_init(&part, &d);
        calib_histogram_set_range(&part, range, &err);
        calib_histogram_collect(&part, data[b], n[b], "p", &err);
        CHECK(c, calib_histogram_merge(&merged, &part, &err) == 0, "merge: %s", err.msg);
        calib_histogram_free(&part);
        calib_histogram_collect(&single, data[b], n[b], "s", &err);
    }
    int ib = 0;
    for (int b = 0; b < nb; b++) {
        calib_max m;
        calib_max_init(&m, -1);
        calib_max_collect(&m, data[b], 1, &n[b], "m", &err);
        if (m.amax[0] == range) ib = b;
        calib_max_free(&m);
    }
    calib_histogram_collect(&first_max, data[ib], n[ib], "f", &err);
    for (int b = 0; b < nb; b++)
        if (b != ib) calib_histogram_collect(&first_max, data[b], n[b], "f", &err);
    CHECK(c, !err.failed, "merge protocol: %s", err.msg);
    CHECK(c, merged.nbins == single.nbins && !memcmp(merged.counts, single.counts, (size_t)single.nbins * 8) &&
                 !memcmp(merged.edges, single.edges, (size_t)(single.nbins + 1) * 8),
          "%d per-process histograms on the agreed range merge to exactly one histogram over all data", nb);
    CHECK(c, first_max.nbins == single.nbins && !memcmp(first_max.counts, single.counts, (size_t)single.nbins * 8),
          "and equal one modelopt-style calibrator whose first batch holds the global max");
    float am, as;
    hist_amax_method ms[3] = {HIST_AMAX_PERCENTILE, HIST_AMAX_ENTROPY, HIST_AMAX_MSE};
    for (int k = 0; k < 3; k++) {
        calib_histogram_compute_amax(&merged, ms[k], &d, &am, "m", &err);
        calib_histogram_compute_amax(&single, ms[k], &d, &as, "s", &err);
        CHECK(c, am == as, "merged %s amax %g equals single-process %g", hist_amax_method_name(ms[k]), (double)am,
              (double)as);
    }

    /* different ranges: re-binned merge keeps every count and lands within a few bins */
    calib_histogram approx, all;
    calib_histogram_init(&approx, &d);
    calib_histogram_init(&all, &d);
    int64_t total = 0;
    double widest = 0.0;
    for (int b = 0; b < nb; b++) {
        calib_histogram part;
        calib_histogram_init(&part, &d);
        calib_histogram_collect(&part, data[b], n[b], "p", &err);
        widest = fmax(widest, part.edges[1] - part.edges[0]);
        calib_histogram_merge(&approx, &part, &err);
        calib_histogram_free(&part);
        calib_histogram_collect(&all, data[b], n[b], "a", &err);
        total += n[b];
    }
    int64_t t2 = 0;
    for (int64_t k = 0; k < approx.nbins; k++) t2 += approx.counts[k];
    CHECK(c, t2 == total, "re-binned merge keeps all %lld counts (%lld)", (long long)total, (long long)t2);
    calib_histogram_compute_amax(&approx, HIST_AMAX_PERCENTILE, &d, &am, "m", &err);
    calib_histogram_compute_amax(&all, HIST_AMAX_PERCENTILE, &d, &as, "s", &err);
    CHECK(c, fabs(am - as) <= widest, "re-binned merge percentile %g vs one calibrator %g (%.2f of the widest part bin)",
          (double)am, (double)as, fabs(am - as) / widest);
    calib_histogram_free(&approx);
    calib_histogram_free(&all);
    calib_histogram_free(&merged);
    calib_histogram_free(&single);
    calib_histogram_free(&first_max);
    calib_max_free(&global);
    for (int b = 0; b < nb; b++) free(data[b]);
}

static void errors(qb_check *c) {
    quant_desc d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    d.skip_zeros = true;
    calib_histogram h;
    calib_histogram_init(&h, &d);
    qb_err err = {0};
    float a;
    CHECK(c, calib_histogram_compute_amax(&h, HIST_AMAX_PERCENTILE, &d, &a, "enc.0.add_residual", &err) != 0 &&
                 strstr(err.msg, "no data") && strstr(err.msg, "enc.0.add_residual"),
          "compute with no data is an error naming the quantizer (%s)", err.msg);
    float zeros[4] = {0, 0, 0, 0}, bad[4] = {1, 2, INFINITY, 3};
    qb_err_clear(&err);
    CHECK(c, calib_histogram_collect(&h, zeros, 4, "z", &err) == 0 && h.nbins == 0, "all-zero batch with skip_zeros");
    CHECK(c, calib_histogram_compute_amax(&h, HIST_AMAX_ENTROPY, &d, &a, "z", &err) != 0, "still no data");
    qb_err_clear(&err);
    CHECK(c, calib_histogram_collect(&h, bad, 4, "enc.3.matmul_q", &err) != 0 && strstr(err.msg, "enc.3.matmul_q") &&
                 strstr(err.msg, "Inf"),
          "Inf during calibration is an error naming the quantizer (%s)", err.msg);
    calib_histogram_free(&h);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/calib_histogram.json", &err);
    if (CHECK(&c, root != NULL, "fixture: %s", err.msg)) {
        json_t *cases = json_object_get(root, "cases");
        worst wm = {0}, wn = {0};
        for (size_t k = 0; k < json_array_size(cases); k++) {
            golden(&c, json_array_get(cases, k), "modelopt", HIST_MODELOPT, &wm);
            golden(&c, json_array_get(cases, k), "pq21_numpy", HIST_PQ21_NUMPY, &wn);
            if (!strcmp(json_string_value(json_object_get(json_array_get(cases, k), "name")), "multi_batch"))
                merge_exact(&c, json_array_get(cases, k));
        }
        printf("largest deviation, modelopt semantics:   percentile %.3g rel, entropy %.3g bins, mse %.3g bins\n",
               wm.percentile_rel, wm.entropy_bins, wm.mse_bins);
        printf("largest deviation, pq2.1 numpy semantics: percentile %.3g rel, entropy %.3g bins, mse %.3g bins\n",
               wn.percentile_rel, wn.entropy_bins, wn.mse_bins);
        json_decref(root);
    }
    upstream(&c);
    errors(&c);
    return qb_check_finish(&c, "calib_histogram");
}

/* weight_int8.c: see weight_int8.h. */
#include "export/weight_int8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "quant/fake_quant.h"

float qb_int8_scale(float amax, const quant_desc *d) {
    return fake_quant_scale(amax, d) == 0.0f ? 1.0f : amax / quant_desc_bound(d);
}

void qb_int8_dequantize_exact(const int8_t *q, int64_t rows, int64_t cols, const float *amax, int64_t n_amax,
                              const quant_desc *d, float *w) {
    for (int64_t r = 0; r < rows; r++) {
        const float s = fake_quant_scale(amax[n_amax == 1 ? 0 : r], d);
        for (int64_t c = 0; c < cols; c++) w[r * cols + c] = s == 0.0f ? 0.0f : (float)q[r * cols + c] / s;
    }
}

void qb_int8_weight_free(qb_int8_weight *w) {
    free(w->q);
    free(w->amax);
    free(w->scale);
    memset(w, 0, sizeof *w);
}

int qb_int8_quantize(const float *w, int64_t rows, int64_t cols, const float *amax, int64_t n_amax, const quant_desc *d,
                     qb_int8_weight *out, qb_err *err) {
    memset(out, 0, sizeof *out);
    if (d->is_unsigned || d->num_bits > 8 || d->num_bits < 2)
        return qb_errorf(err, "int8 weights need a signed quantizer of 2 to 8 bits (got %d bits%s)", d->num_bits,
                         d->is_unsigned ? ", unsigned" : "");
    if (n_amax != 1 && n_amax != rows) return qb_errorf(err, "%lld amax values for %lld rows", (long long)n_amax, (long long)rows);
    size_t n = (size_t)(rows * cols);
    float *fq = malloc(n * sizeof(float) + 1), *back = malloc(n * sizeof(float) + 1);
    out->q = malloc(n + 1);
    out->amax = malloc((size_t)n_amax * sizeof(float));
    out->scale = malloc((size_t)n_amax * sizeof(float));
    if (!fq || !back || !out->q || !out->amax || !out->scale) {
        free(fq);
        free(back);
        qb_int8_weight_free(out);
        return qb_errorf(err, "out of memory quantizing a [%lld, %lld] weight", (long long)rows, (long long)cols);
    }
    out->rows = rows;
    out->cols = cols;
    out->n_scale = n_amax;
    out->desc = *d;
    memcpy(out->amax, amax, (size_t)n_amax * sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i])) {
            free(fq);
            free(back);
            qb_int8_weight_free(out);
            return qb_errorf(err, "weight element %zu is %g", i, (double)w[i]);
        }
    for (int64_t k = 0; k < n_amax; k++) out->scale[k] = qb_int8_scale(amax[k], d);
    /* the forward's arithmetic, then its integer level: fq = q / s exactly rounded, so fq * s lies within a few ulps
     * of the integer q and rintf recovers it whatever the tie rule */
    if (n_amax == 1) fake_quant_per_tensor(fq, w, (int64_t)n, amax[0], d);
    else fake_quant_per_channel(fq, w, 1, rows, cols, amax, d);
    for (int64_t r = 0; r < rows; r++) {
        const float s = fake_quant_scale(amax[n_amax == 1 ? 0 : r], d);
        for (int64_t c = 0; c < cols; c++) out->q[r * cols + c] = (int8_t)rintf(fq[r * cols + c] * s);
    }
    qb_int8_dequantize_exact(out->q, rows, cols, amax, n_amax, d, back);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (back[i] != fq[i])
            rc = qb_errorf(err, "int8 weight element %zu: q %d reconstructs %.9g, fake quantization gives %.9g", i, out->q[i],
                           (double)back[i], (double)fq[i]);
    free(fq);
    free(back);
    if (rc) qb_int8_weight_free(out);
    return rc;
}

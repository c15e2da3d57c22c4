/* quantizer.c: see quantizer.h. */
#include "model/quantizer.h"

#include <string.h>

int qb_quantizer_init(qb_quantizer *q, const char *name, const quant_desc *desc, int64_t channels, qb_err *err) {
    memset(q, 0, sizeof *q);
    if (strlen(name) >= sizeof q->tq.name) return qb_errorf(err, "quantizer name %s is too long", name);
    if (tensor_quantizer_init(&q->tq, name, desc, err)) return -1;
    q->tq.disabled = true;
    q->channels = qb_quantizer_per_channel(q) ? channels : 1;
    return 0;
}

void qb_quantizer_free(qb_quantizer *q) { tensor_quantizer_free(&q->tq); }

int qb_quantizer_set_amax(qb_quantizer *q, const float *amax, int64_t n, qb_err *err) {
    if (n != 1 && n != q->channels)
        return qb_errorf(err, "%s: %ld amax values given, want %ld%s", q->tq.name, (long)n, (long)q->channels, q->channels > 1 ? " or 1" : "");
    if (tensor_quantizer_set_amax(&q->tq, amax, n, err)) return -1;  /* validates the values first */
    if (n == 1 && q->channels > 1) {                                   /* per row -> per tensor, calibrator too */
        q->tq.desc.axis = -1;
        q->channels = 1;
        calib_max_free(&q->tq.max);
        calib_max_init(&q->tq.max, -1);
    }
    return 0;
}

/* lr_schedule.c: see lr_schedule.h. */
#include "train/lr_schedule.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[] = {"linear", "cosine", "constant", "constant_with_warmup"};

int qb_lr_kind_parse(const char *name, qb_lr_kind *kind, qb_err *err) {
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (qb_lr_kind)k;
            return 0;
        }
    return qb_errorf(err, "unknown lr scheduler '%s' (expected linear, cosine, constant or constant_with_warmup)", name);
}

const char *qb_lr_kind_name(qb_lr_kind kind) {
    return kind >= QB_LR_LINEAR && kind <= QB_LR_CONSTANT_WITH_WARMUP ? kind_names[kind] : "?";
}

int64_t qb_lr_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
    if (warmup_steps > 0) return warmup_steps;
    return (int64_t)ceil((double)total_steps * warmup_ratio);
}

static double max1(int64_t v) { return (double)(v > 1 ? v : 1); }

double qb_lr_at(const qb_lr_schedule *s, int64_t step) {
    int64_t w = s->warmup_steps, total = s->total_steps;
    if (s->kind != QB_LR_CONSTANT && step < w) return s->base_lr * ((double)step / max1(w));
    double factor = 1.0;
    switch (s->kind) {
    case QB_LR_LINEAR: factor = fmax(0.0, (double)(total - step) / max1(total - w)); break;
    case QB_LR_COSINE: {
        double progress = (double)(step - w) / max1(total - w);
        factor = fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress)));
        break;
    }
    case QB_LR_CONSTANT:
    case QB_LR_CONSTANT_WITH_WARMUP: factor = 1.0; break;
    }
    return s->base_lr * factor;
}

/* qa_distill.c: see qa_distill.h. */
#include "train/qa_distill.h"

qb_tensor *qb_qa_distill_loss(qb_ctx *ctx, qb_tensor *start, qb_tensor *end, qb_tensor *t_start, qb_tensor *t_end, qb_tensor *ce, float alpha,
                              float temperature) {
    qb_tensor *kl = qb_add(ctx, qb_distill_kl(ctx, start, t_start, temperature), qb_distill_kl(ctx, end, t_end, temperature));
    qb_tensor *kd = qb_scale(ctx, kl, alpha * temperature * temperature * 0.5f);
    if (alpha == 1.0f) return kd;
    return qb_add(ctx, kd, qb_scale(ctx, ce, 1.0f - alpha));
}

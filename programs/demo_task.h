/* demo_task.h: qat-train's "demo" task: a small GELU network trained on two spirals with the engine and AdamW
 * (cosine schedule) to a stated loss; writes demo_metrics.json. */
#pragma once
#include "base/error.h"
#include "qat_config.h"

/* Runs the demo; an error when the final loss misses demo.target_loss. */
int demo_task_run(const qat_config *c, qb_err *err);

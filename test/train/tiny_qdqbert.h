/* tiny_qdqbert.h: a small random QDQBert for question answering (vocab 40, hidden 8, 2 layers of 2 heads,
 * intermediate 16, 16 positions) with a recipe's quantizer descriptors, for tests of the train layer. */
#pragma once
#include "train/quant_recipe.h"
#include "train/squad_features.h"

/* rows features of len tokens for it (ids in 1..39, two segments, some padding, answers in the first tokens) in the
 * caller's arrays ([rows * len] each, sp and ep [rows]). */
void tiny_qdqbert_features(qb_squad_features *f, int rows, int len, int32_t *ids, int32_t *types, int32_t *mask, int32_t *sp, int32_t *ep);
/* Builds the model on ctx; errors name the recipe key or the model's problem. */
int tiny_qdqbert_build(qb_bert_model *m, qb_ctx *ctx, const qb_quant_recipe *r, qb_err *err);

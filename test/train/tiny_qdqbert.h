/* tiny_qdqbert.h: a small random QDQBert for question answering (vocab 40, hidden 8, 2 layers of 2 heads,
 * intermediate 16, 16 positions) with a recipe's quantizer descriptors, for tests of the train layer. */
#pragma once
#include "train/quant_recipe.h"

/* Builds the model on ctx; errors name the recipe key or the model's problem. */
int tiny_qdqbert_build(qb_bert_model *m, qb_ctx *ctx, const qb_quant_recipe *r, qb_err *err);

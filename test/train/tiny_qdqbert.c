/* tiny_qdqbert.c: see tiny_qdqbert.h. */
#include "tiny_qdqbert.h"

void tiny_qdqbert_features(qb_squad_features *f, int rows, int len, int32_t *ids, int32_t *types, int32_t *mask, int32_t *sp, int32_t *ep) {
    for (int i = 0; i < rows * len; i++) {
        ids[i] = 1 + (i * 7 + i / len) % 39;
        types[i] = i % len >= len / 2;
        mask[i] = i % len < len - (i / len) % 4;
    }
    for (int r = 0; r < rows; r++) {
        sp[r] = 1 + r % 5;
        ep[r] = 3 + r % 6;
    }
    *f = (qb_squad_features){.max_len = len, .n = rows, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                             .start_positions = sp, .end_positions = ep};
}

int tiny_qdqbert_build(qb_bert_model *m, qb_ctx *ctx, const qb_quant_recipe *r, qb_err *err) {
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 40;
    cfg.hidden_size = 8;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 2;
    cfg.intermediate_size = 16;
    cfg.max_position_embeddings = 16;
    quant_defaults d;
    if (qb_quant_recipe_defaults(r, &d, err)) return -1;
    qb_bert_options opt = {.quant = &d};
    if (qb_bert_init(m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, &opt)) return qb_errorf(err, "%s", ctx->err.msg);
    return 0;
}

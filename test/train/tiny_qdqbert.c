/* tiny_qdqbert.c: see tiny_qdqbert.h. */
#include "tiny_qdqbert.h"

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

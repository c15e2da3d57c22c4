/* bert.h: BERT (HF BertModel layout and parameter names) with QDQBERT's quantization points, and its heads.
 * Shapes: B batch rows, S tokens, H hidden, I intermediate, N heads, D head size, V vocabulary, C classes. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "autograd/autograd.h"
#include "model/config.h"
#include "model/quantizer.h"
#include "quant/weight_cache.h"

typedef enum {
    QB_BERT_MODEL,               /* BertModel: last hidden state and pooler */
    QB_BERT_MASKED_LM,           /* BertForMaskedLM */
    QB_BERT_LM_HEAD,             /* BertLMHeadModel (causal; config.is_decoder) */
    QB_BERT_SEQUENCE_CLS,        /* BertForSequenceClassification */
    QB_BERT_NEXT_SENTENCE,       /* BertForNextSentencePrediction */
    QB_BERT_MULTIPLE_CHOICE,     /* BertForMultipleChoice */
    QB_BERT_TOKEN_CLS,           /* BertForTokenClassification */
    QB_BERT_QUESTION_ANSWERING,  /* BertForQuestionAnswering */
} qb_bert_head;

/* The 20 quantizers of an encoder layer, in HF QDQBert order (names in bert.c). */
enum {
    QB_Q_QUERY_INPUT, QB_Q_QUERY_WEIGHT, QB_Q_KEY_INPUT, QB_Q_KEY_WEIGHT, QB_Q_VALUE_INPUT, QB_Q_VALUE_WEIGHT,
    QB_Q_MATMUL_Q, QB_Q_MATMUL_K, QB_Q_MATMUL_V, QB_Q_MATMUL_A,
    QB_Q_ATTN_OUT_INPUT, QB_Q_ATTN_OUT_WEIGHT, QB_Q_ATTN_ADD_LOCAL, QB_Q_ATTN_ADD_RESIDUAL,
    QB_Q_INTER_INPUT, QB_Q_INTER_WEIGHT, QB_Q_OUT_INPUT, QB_Q_OUT_WEIGHT, QB_Q_OUT_ADD_LOCAL, QB_Q_OUT_ADD_RESIDUAL,
    QB_Q_PER_LAYER
};

/* The fused fake-quant ops (quant/op_fused.h) bert.c uses, a mask in qb_bert_model.fuse. */
#define QB_FUSE_SOFTMAX 1u  /* softmax + dropout + matmul_a input quantizer */
#define QB_FUSE_ACT 2u      /* activation + output.dense input quantizer */
#define QB_FUSE_RESIDUAL 4u /* add_local and add_residual quantizers + residual add + layer norm */
#define QB_FUSE_LN_OUT 8u   /* with QB_FUSE_RESIDUAL: the next input quantizer of the layer norm's output in the same pass */
#define QB_FUSE_ALL 15u

typedef struct qb_bert_options {
    bool quantize_heads;         /* also give the pooler and head linears input/weight quantizers (QDQBert does not) */
    const quant_defaults *quant; /* descriptors per kind of quantizer; NULL: quant_defaults_init (QDQBERT's) */
    bool unfused;                /* the unfused ops instead of the fused fake-quant kernels (quant.fuse = false) */
    bool no_weight_cache;        /* fake-quantize the weights in every forward (quant.weight_cache = false) */
} qb_bert_options;

typedef struct qb_bert_linear {
    qb_tensor *w, *b;            /* [out, in], [out] */
    qb_quantizer *in_q, *w_q;    /* NULL when the layer is not quantized */
} qb_bert_linear;

typedef struct qb_bert_layer {
    qb_bert_linear query, key, value, attn_out, inter, out;
    qb_tensor *attn_ln_w, *attn_ln_b;  /* attention.output.LayerNorm [H] */
    qb_tensor *out_ln_w, *out_ln_b;    /* output.LayerNorm [H] */
    qb_quantizer *q;                   /* this layer's QB_Q_PER_LAYER quantizers */
} qb_bert_layer;

typedef struct qb_bert_model {
    qb_ctx *ctx;
    qb_bert_config cfg;
    qb_bert_head head;
    qb_tensor *word_emb, *pos_emb, *type_emb;  /* [V, H], [P, H], [T, H] */
    qb_tensor *emb_ln_w, *emb_ln_b;            /* [H] */
    qb_bert_layer *layers;                     /* [num_hidden_layers] */
    qb_bert_linear pooler;                     /* w NULL when the head has no pooler */
    qb_bert_linear lm_transform;               /* cls.predictions.transform.dense (LM heads) */
    qb_tensor *lm_ln_w, *lm_ln_b;              /* cls.predictions.transform.LayerNorm */
    qb_bert_linear lm_decoder;                 /* w = word_emb (tied), b = cls.predictions.bias [V] */
    qb_bert_linear classifier;                 /* seq_relationship / classifier / qa_outputs */
    qb_tensor **params;                        /* this model's parameters, HF order */
    int n_params;
    qb_quantizer *quant;                       /* all quantizers: 20 per layer, then the heads' (option) */
    int n_quant;
    quant_defaults quant_desc;                 /* the descriptors the quantizers were built from */
    unsigned fuse;                             /* QB_FUSE_* fused fake-quant ops where the quantizers allow (default all) */
    bool int8_gemm;                            /* quant.int8_gemm: fake-quantized GEMMs on int8 codes (op_int8_gemm.h) */
    bool weight_cache;                         /* quant.weight_cache: linear weights fake-quantized once per change */
    qb_weight_cache wcache;                    /* every quantized linear's weight and weight quantizer */
    bool recompute_act;                        /* train.recompute_activation: output.dense's input not kept for the
                                                * backward but recomputed there (where only that linear reads it) */
    bool keep_f32_inputs;                      /* precision bf16: keep the linears' fp32 inputs (else handed back after
                                                * their GEMMs, only the bf16 copies kept; tests compare both) */
} qb_bert_model;

typedef struct qb_bert_batch {
    int batch, seq;                  /* rows B (multiple choice: B * choices) and tokens S */
    const int32_t *input_ids;        /* [B, S] */
    const int32_t *attention_mask;   /* [B, S] 1 keep, 0 pad; NULL keeps all */
    const int32_t *token_type_ids;   /* [B, S]; NULL means zeros */
    const int32_t *position_ids;     /* [B, S]; NULL means 0..S-1 */
} qb_bert_batch;

typedef struct qb_bert_output {
    qb_tensor *hidden;       /* [B, S, H] last hidden state */
    qb_tensor *pooled;       /* [B, H] when the model has a pooler */
    qb_tensor *logits;       /* [B, S, V] LM; [B, C] sequence/NSP; [B/choices, choices]; [B, S, C] token; [B, S] QA start */
    qb_tensor *end_logits;   /* [B, S] QA end */
    qb_tensor *loss;         /* [1] when labels were given */
} qb_bert_output;

/* Builds the model's parameters in ctx under their HF names ("bert." prefix) and its quantizers (all disabled);
 * weights are initialised as transformers does (normal(0, initializer_range), LayerNorm 1/0, biases 0). */
int qb_bert_init(qb_bert_model *m, qb_ctx *ctx, const qb_bert_config *cfg, qb_bert_head head, const qb_bert_options *opt);
/* Frees the quantizers and lists (the parameters belong to ctx). */
void qb_bert_free(qb_bert_model *m);
/* HF class name of a head ("BertForQuestionAnswering"). */
const char *qb_bert_head_class(qb_bert_head head);
/* True when the head model has a pooler (BertModel, sequence classification, NSP, multiple choice). */
bool qb_bert_head_has_pooler(qb_bert_head head);

/* Encoder forward: last hidden state [B, S, H]; NULL on error (message in ctx->err). */
qb_tensor *qb_bert_forward(qb_bert_model *m, const qb_bert_batch *b);
/* Pooler: tanh(dense(hidden[:, 0])) [B, H]. */
qb_tensor *qb_bert_pool(qb_bert_model *m, qb_tensor *hidden);
/* y = x @ W^T + b through the layer's input and weight quantizers: x [..., in] -> [..., out]. */
qb_tensor *qb_bert_linear_forward(qb_bert_model *m, const qb_bert_linear *l, qb_tensor *x);
/* x through quantizer q (x unchanged when q is NULL or disabled). */
qb_tensor *qb_bert_quantize(qb_bert_model *m, qb_quantizer *q, qb_tensor *x);

/* The quantizer with this HF name, or NULL. */
qb_quantizer *qb_bert_quantizer(qb_bert_model *m, const char *name);
/* Enables or disables every quantizer whose name matches a glob pattern ("*" for all); returns the count. */
int qb_bert_quant_enable(qb_bert_model *m, const char *pattern, bool on);

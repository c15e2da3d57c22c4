/* config.h: BERT hyper-parameters read from (and written to) a HuggingFace config.json. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "base/error.h"

typedef enum { QB_ACT_GELU, QB_ACT_GELU_TANH, QB_ACT_RELU } qb_bert_act;

typedef enum {
    QB_PROBLEM_AUTO,            /* HF problem_type null: decided from num_labels and the label type */
    QB_PROBLEM_REGRESSION,
    QB_PROBLEM_SINGLE_LABEL,
    QB_PROBLEM_MULTI_LABEL,
} qb_problem_type;

typedef struct qb_bert_config {
    int vocab_size;
    int hidden_size;
    int num_hidden_layers;
    int num_attention_heads;
    int intermediate_size;
    qb_bert_act hidden_act;
    double hidden_dropout_prob;     /* the reals as config.json gives them (written back unchanged) */
    double attention_probs_dropout_prob;
    double classifier_dropout;      /* HF null means hidden_dropout_prob (resolved on load) */
    int max_position_embeddings;
    int type_vocab_size;
    double layer_norm_eps;
    double initializer_range;       /* std of the normal init of weights */
    int pad_token_id;
    bool is_decoder;
    int num_labels;
    qb_problem_type problem_type;
} qb_bert_config;

/* Fills c with HF BertConfig's defaults (BERT-base). */
void qb_bert_config_default(qb_bert_config *c);
/* Parses config.json text; `what` names the source in messages. Unknown keys are ignored (any number is accepted);
 * sizes must be integers in range, unsupported settings fail. */
int qb_bert_config_parse(const char *text, size_t len, const char *what, qb_bert_config *c, qb_err *err);
/* Reads and parses a config.json file. */
int qb_bert_config_load(const char *path, qb_bert_config *c, qb_err *err);
/* Checks sizes and probabilities; `what` names the source in messages. */
int qb_bert_config_validate(const qb_bert_config *c, const char *what, qb_err *err);
/* config.json text as qb_bert_config_save writes it (without the final newline), malloc'd; NULL when out of memory. */
char *qb_bert_config_dumps(const qb_bert_config *c, const char *architecture);
/* Writes config.json atomically as transformers does (sorted keys, indent 2, reals as the shortest decimal that
 * reads back the same: 0.1, 1e-12), with model_type "bert" and the given HF architecture name. */
int qb_bert_config_save(const qb_bert_config *c, const char *architecture, const char *path, qb_err *err);
/* HF's name of an activation ("gelu", "gelu_new", "relu"). */
const char *qb_bert_act_name(qb_bert_act a);

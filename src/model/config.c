/* config.c: see config.h. */
#include "model/config.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "base/json.h"

void qb_bert_config_default(qb_bert_config *c) {
    *c = (qb_bert_config){
        .vocab_size = 30522,
        .hidden_size = 768,
        .num_hidden_layers = 12,
        .num_attention_heads = 12,
        .intermediate_size = 3072,
        .hidden_act = QB_ACT_GELU,
        .hidden_dropout_prob = 0.1,
        .attention_probs_dropout_prob = 0.1,
        .classifier_dropout = 0.1,
        .max_position_embeddings = 512,
        .type_vocab_size = 2,
        .layer_norm_eps = 1e-12,
        .initializer_range = 0.02,
        .pad_token_id = 0,
        .is_decoder = false,
        .num_labels = 2,
        .problem_type = QB_PROBLEM_AUTO,
    };
}

const char *qb_bert_act_name(qb_bert_act a) {
    switch (a) {
    case QB_ACT_GELU: return "gelu";
    case QB_ACT_GELU_TANH: return "gelu_new";
    case QB_ACT_RELU: return "relu";
    }
    return "?";
}

static int get_int(json_t *root, const char *key, int *out, const char *what, qb_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (qb_json_int(v, -2147483647, 2147483647, &x, what, key, err)) return -1;
    *out = (int)x;
    return 0;
}

static int get_real(json_t *root, const char *key, double *out, const char *what, qb_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return qb_errorf(err, "%s: key %s: expected a number", what, key);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(json_t *root, const char *key, bool *out, const char *what, qb_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return qb_errorf(err, "%s: key %s: expected true or false", what, key);
    *out = json_is_true(v);
    return 0;
}

/* The string value of key, NULL when absent or null; a non-string sets err. */
static const char *get_str(json_t *root, const char *key, const char *what, qb_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        qb_errorf(err, "%s: key %s: expected a string", what, key);
        return NULL;
    }
    return json_string_value(v);
}

static int parse_root(json_t *root, const char *what, qb_bert_config *c, qb_err *err) {
    if (!json_is_object(root)) return qb_errorf(err, "%s: not a JSON object", what);
    const char *mt = get_str(root, "model_type", what, err);
    if (err->failed) return -1;
    if (!mt) return qb_errorf(err, "%s: key model_type is missing (want \"bert\")", what);
    if (strcmp(mt, "bert") != 0 && strcmp(mt, "qdqbert") != 0)
        return qb_errorf(err, "%s: model_type \"%s\" is not supported (want \"bert\" or \"qdqbert\")", what, mt);

    qb_bert_config_default(c);
    bool classifier_dropout_set = false;
    json_t *cd = json_object_get(root, "classifier_dropout");
    if (cd && !json_is_null(cd)) classifier_dropout_set = true;
    if (get_int(root, "vocab_size", &c->vocab_size, what, err) || get_int(root, "hidden_size", &c->hidden_size, what, err) ||
        get_int(root, "num_hidden_layers", &c->num_hidden_layers, what, err) ||
        get_int(root, "num_attention_heads", &c->num_attention_heads, what, err) ||
        get_int(root, "intermediate_size", &c->intermediate_size, what, err) ||
        get_real(root, "hidden_dropout_prob", &c->hidden_dropout_prob, what, err) ||
        get_real(root, "attention_probs_dropout_prob", &c->attention_probs_dropout_prob, what, err) ||
        get_real(root, "classifier_dropout", &c->classifier_dropout, what, err) ||
        get_int(root, "max_position_embeddings", &c->max_position_embeddings, what, err) ||
        get_int(root, "type_vocab_size", &c->type_vocab_size, what, err) ||
        get_real(root, "layer_norm_eps", &c->layer_norm_eps, what, err) ||
        get_real(root, "initializer_range", &c->initializer_range, what, err) ||
        get_int(root, "pad_token_id", &c->pad_token_id, what, err) || get_bool(root, "is_decoder", &c->is_decoder, what, err) ||
        get_int(root, "num_labels", &c->num_labels, what, err))
        return -1;
    if (!classifier_dropout_set) c->classifier_dropout = c->hidden_dropout_prob;

    json_t *id2label = json_object_get(root, "id2label");
    if (id2label && !json_is_null(id2label)) {
        if (!json_is_object(id2label)) return qb_errorf(err, "%s: key id2label: expected an object", what);
        c->num_labels = (int)json_object_size(id2label);
    }

    const char *act = get_str(root, "hidden_act", what, err);
    if (err->failed) return -1;
    if (act) {
        if (strcmp(act, "gelu") == 0) c->hidden_act = QB_ACT_GELU;
        else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0) c->hidden_act = QB_ACT_GELU_TANH;
        else if (strcmp(act, "relu") == 0) c->hidden_act = QB_ACT_RELU;
        else return qb_errorf(err, "%s: hidden_act \"%s\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)", what, act);
    }
    const char *pet = get_str(root, "position_embedding_type", what, err);
    if (err->failed) return -1;
    if (pet && strcmp(pet, "absolute") != 0)
        return qb_errorf(err, "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")", what, pet);
    const char *pt = get_str(root, "problem_type", what, err);
    if (err->failed) return -1;
    if (pt) {
        if (strcmp(pt, "regression") == 0) c->problem_type = QB_PROBLEM_REGRESSION;
        else if (strcmp(pt, "single_label_classification") == 0) c->problem_type = QB_PROBLEM_SINGLE_LABEL;
        else if (strcmp(pt, "multi_label_classification") == 0) c->problem_type = QB_PROBLEM_MULTI_LABEL;
        else return qb_errorf(err, "%s: problem_type \"%s\" is not supported", what, pt);
    }
    bool cross = false;
    if (get_bool(root, "add_cross_attention", &cross, what, err)) return -1;
    if (cross) return qb_errorf(err, "%s: add_cross_attention true is not supported", what);
    return qb_bert_config_validate(c, what, err);
}

int qb_bert_config_parse(const char *text, size_t len, const char *what, qb_bert_config *c, qb_err *err) {
    json_t *root = qb_json_loadb(text, len, what, err);
    if (!root) return -1;
    int rc = parse_root(root, what, c, err);
    json_decref(root);
    return rc;
}

int qb_bert_config_load(const char *path, qb_bert_config *c, qb_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (qb_read_file(path, &text, &len, err)) return -1;
    int rc = qb_bert_config_parse(text, len, path, c, err);
    free(text);
    return rc;
}

int qb_bert_config_validate(const qb_bert_config *c, const char *what, qb_err *err) {
    struct { const char *key; int v; } pos[] = {
        {"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size}, {"num_hidden_layers", c->num_hidden_layers},
        {"num_attention_heads", c->num_attention_heads}, {"intermediate_size", c->intermediate_size},
        {"max_position_embeddings", c->max_position_embeddings}, {"type_vocab_size", c->type_vocab_size},
        {"num_labels", c->num_labels},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) return qb_errorf(err, "%s: key %s: %d must be positive", what, pos[i].key, pos[i].v);
    if (c->num_hidden_layers > 1024 || c->num_attention_heads > 1024 || c->hidden_size > (1 << 16) ||
        c->intermediate_size > (1 << 18) || c->max_position_embeddings > (1 << 20) || c->type_vocab_size > (1 << 16) ||
        c->vocab_size > (1 << 24) || c->num_labels > (1 << 16))
        return qb_errorf(err, "%s: a size is out of range (layers and heads <= 1024, hidden <= 65536, intermediate <= 262144, "
                              "positions <= 2^20, vocab <= 2^24, labels <= 65536)", what);
    if (c->hidden_size % c->num_attention_heads)
        return qb_errorf(err, "%s: hidden_size %d is not a multiple of num_attention_heads %d", what, c->hidden_size,
                         c->num_attention_heads);
    struct { const char *key; double v; } prob[] = {
        {"hidden_dropout_prob", c->hidden_dropout_prob}, {"attention_probs_dropout_prob", c->attention_probs_dropout_prob},
        {"classifier_dropout", c->classifier_dropout},
    };
    for (size_t i = 0; i < sizeof prob / sizeof prob[0]; i++)
        if (!(prob[i].v >= 0.0 && prob[i].v < 1.0)) return qb_errorf(err, "%s: key %s: %g is outside [0, 1)", what, prob[i].key, prob[i].v);
    if (!(c->layer_norm_eps > 0.0) || !isfinite(c->layer_norm_eps))
        return qb_errorf(err, "%s: key layer_norm_eps: %g must be positive", what, c->layer_norm_eps);
    if (!(c->initializer_range >= 0.0f && c->initializer_range <= 1.0f))
        return qb_errorf(err, "%s: key initializer_range: %g is outside [0, 1]", what, c->initializer_range);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return qb_errorf(err, "%s: key pad_token_id: %d is outside the vocabulary of %d", what, c->pad_token_id, c->vocab_size);
    return 0;
}

/* config.json as a JSON object (model_type "bert", the given HF architecture name); NULL when out of memory. */
static json_t *config_json(const qb_bert_config *c, const char *architecture) {
    static const char *problem[] = {NULL, "regression", "single_label_classification", "multi_label_classification"};
    json_t *root = json_object();
    json_t *id2label = json_object(), *label2id = json_object();
    if (!root || !id2label || !label2id) {
        json_decref(root);
        json_decref(id2label);
        json_decref(label2id);
        return NULL;
    }
    for (int i = 0; i < c->num_labels; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "%d", i);
        snprintf(v, sizeof v, "LABEL_%d", i);
        json_object_set_new(id2label, k, json_string(v));
        json_object_set_new(label2id, v, json_integer(i));
    }
    json_object_set_new(root, "architectures", json_pack("[s]", architecture));
    json_object_set_new(root, "model_type", json_string("bert"));
    json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(root, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(root, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(root, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(root, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(root, "hidden_act", json_string(qb_bert_act_name(c->hidden_act)));
    json_object_set_new(root, "hidden_dropout_prob", json_real(c->hidden_dropout_prob));
    json_object_set_new(root, "attention_probs_dropout_prob", json_real(c->attention_probs_dropout_prob));
    json_object_set_new(root, "classifier_dropout", json_real(c->classifier_dropout));
    json_object_set_new(root, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(root, "type_vocab_size", json_integer(c->type_vocab_size));
    json_object_set_new(root, "layer_norm_eps", json_real(c->layer_norm_eps));
    json_object_set_new(root, "initializer_range", json_real(c->initializer_range));
    json_object_set_new(root, "pad_token_id", json_integer(c->pad_token_id));
    json_object_set_new(root, "position_embedding_type", json_string("absolute"));
    json_object_set_new(root, "is_decoder", json_boolean(c->is_decoder));
    json_object_set_new(root, "id2label", id2label);
    json_object_set_new(root, "label2id", label2id);
    json_object_set_new(root, "problem_type", problem[c->problem_type] ? json_string(problem[c->problem_type]) : json_null());
    return root;
}

char *qb_bert_config_dumps(const qb_bert_config *c, const char *architecture) {
    json_t *root = config_json(c, architecture);
    char *text = root ? qb_json_dumps_shortest(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    return text;
}

int qb_bert_config_save(const qb_bert_config *c, const char *architecture, const char *path, qb_err *err) {
    json_t *root = config_json(c, architecture);
    if (!root) return qb_errorf(err, "%s: out of memory", path);
    int rc = qb_json_save(root, JSON_INDENT(2) | JSON_SORT_KEYS, path, err);
    json_decref(root);
    return rc;
}

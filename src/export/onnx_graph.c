/* onnx_graph.c: see onnx_graph.h. */
#include "export/onnx_graph.h"

#include <string.h>

int qb_onnx_mode_parse(const char *name, qb_onnx_mode *mode, qb_err *err) {
    if (strcmp(name, "qdq") == 0) *mode = QB_ONNX_QDQ;
    else if (strcmp(name, "hf") == 0) *mode = QB_ONNX_HF;
    else return qb_errorf(err, "unknown ONNX mode '%s' (expected qdq or hf)", name);
    return 0;
}

#ifdef QB_HAVE_ONNX
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include "base/fileio.h"
#include "export/export_quantizers.h"
#include "export/weight_int8.h"
#include "onnx.pb-c.h"
#include "quant/fake_quant.h"

#define OPSET 13
#define IR_VERSION 7 /* ONNX 1.8, the first IR of opset 13 */

enum { T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, T_UINT8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
       T_INT8 = ONNX__TENSOR_PROTO__DATA_TYPE__INT8, T_INT64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64 };

/* The graph under construction; every allocation is tracked and freed together. */
typedef struct builder {
    qb_bert_model *m;
    qb_onnx_mode mode;
    qb_err *err;
    void **allocs;
    size_t n_allocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int counter;
    bool oom;
    int act_pairs, weight_dq, weight_pairs;
} builder;

static bool push(builder *b, void ***arr, size_t *n, size_t *cap, void *item) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        void **a = realloc(*arr, c * sizeof *a);
        if (!a) return b->oom = true, false;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = item;
    return true;
}

static void *alloc(builder *b, size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || !push(b, &b->allocs, &b->n_allocs, &b->cap_allocs, p)) {
        free(p);
        b->oom = true;
        return NULL;
    }
    return p;
}

static char *str(builder *b, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = alloc(b, n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *fmt(builder *b, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(builder *b, const char *f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return str(b, buf);
}

/* An initializer holding a copy of bytes of data. */
static const char *init(builder *b, const char *name, int dtype, int ndim, const int64_t *dims, const void *data, size_t bytes) {
    Onnx__TensorProto *t = alloc(b, sizeof *t);
    int64_t *d = alloc(b, (size_t)(ndim ? ndim : 1) * sizeof *d);
    uint8_t *raw = alloc(b, bytes);
    char *nm = str(b, name);
    if (!t || !d || !raw || !nm) return NULL;
    onnx__tensor_proto__init(t);
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    if (bytes) memcpy(raw, data, bytes);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = nm;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = raw;
    return push(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t) ? nm : NULL;
}

static const char *init_f32(builder *b, const char *name, int ndim, const int64_t *dims, const float *v) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= dims[d];
    return init(b, name, T_FLOAT, ndim, dims, v, (size_t)n * sizeof(float));
}

static const char *scalar_f32(builder *b, const char *name, float v) { return init_f32(b, name, 0, NULL, &v); }

static const char *ints64(builder *b, const char *name, int n, const int64_t *v) {
    int64_t d = n;
    return init(b, name, T_INT64, 1, &d, v, (size_t)n * sizeof(int64_t));
}

/* A node of type op with n_in inputs and n_out fresh outputs; NULL inputs are written as "" (absent optional). */
static Onnx__NodeProto *node(builder *b, const char *op, const char *const *in, int n_in, int n_out) {
    Onnx__NodeProto *n = alloc(b, sizeof *n);
    char **ins = alloc(b, (size_t)n_in * sizeof *ins), **outs = alloc(b, (size_t)n_out * sizeof *outs);
    if (!n || !ins || !outs) return NULL;
    onnx__node_proto__init(n);
    int id = b->counter++;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) return b->oom = true, NULL; /* a failed producer */
        ins[i] = str(b, in[i] ? in[i] : "");
    }
    for (int i = 0; i < n_out; i++) outs[i] = fmt(b, "%s_%d%s", op, id, n_out > 1 ? (i ? "_1" : "_0") : "");
    n->name = fmt(b, "%s_%d", op, id);
    n->op_type = str(b, op);
    n->n_input = (size_t)n_in;
    n->input = ins;
    n->n_output = (size_t)n_out;
    n->output = outs;
    return push(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, n) && !b->oom ? n : NULL;
}

static Onnx__AttributeProto *attr(builder *b, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type) {
    if (!n) return NULL;
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    Onnx__AttributeProto **list = alloc(b, (n->n_attribute + 1) * sizeof *list);
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    a->has_type = 1;
    a->type = type;
    if (n->n_attribute) memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

static void attr_int(builder *b, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

static void attr_ints(builder *b, Onnx__NodeProto *n, const char *name, int k, const int64_t *v) {
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = a ? alloc(b, (size_t)k * sizeof *c) : NULL;
    if (!c) return;
    memcpy(c, v, (size_t)k * sizeof *c);
    a->n_ints = (size_t)k;
    a->ints = c;
}

static const char *out(Onnx__NodeProto *n) { return n ? n->output[0] : NULL; }

static const char *op1(builder *b, const char *op, const char *x) { return out(node(b, op, &x, 1, 1)); }

static const char *op2(builder *b, const char *op, const char *x, const char *y) {
    const char *in[2] = {x, y};
    return out(node(b, op, in, 2, 1));
}

static const char *transpose(builder *b, const char *x, int k, const int64_t *perm) {
    Onnx__NodeProto *n = node(b, "Transpose", &x, 1, 1);
    attr_ints(b, n, "perm", k, perm);
    return out(n);
}

/* ---- quantization */

static bool same_quantization(const qb_quantizer *a, const qb_quantizer *c) {
    if (!qb_export_quant_active(a) || !qb_export_quant_active(c) || !a->tq.amax || !c->tq.amax || a->tq.n_amax != c->tq.n_amax) return false;
    const quant_desc *x = &a->tq.desc, *y = &c->tq.desc;
    return x->num_bits == y->num_bits && x->is_unsigned == y->is_unsigned && x->narrow_range == y->narrow_range &&
           memcmp(a->tq.amax, c->tq.amax, (size_t)a->tq.n_amax * sizeof(float)) == 0;
}

/* What ONNX QuantizeLinear/DequantizeLinear can express of an active quantizer. */
static int check_expressible(builder *b, const qb_quantizer *q, bool weight) {
    const quant_desc *d = &q->tq.desc;
    if (d->num_bits != 8)
        return qb_errorf(b->err, "%s: %d bits: ONNX QuantizeLinear at opset 13 is 8-bit (int8/uint8) only", q->tq.name, d->num_bits);
    if (weight) {
        if (d->is_unsigned) return qb_errorf(b->err, "%s: unsigned weights are not exported", q->tq.name);
        if (d->narrow_range && b->mode == QB_ONNX_HF)
            return qb_errorf(b->err, "%s: narrow_range: save_onnx always quantizes to [-128, 127]; use the qdq mode", q->tq.name);
        return 0;
    }
    if (d->narrow_range && !d->is_unsigned)
        return qb_errorf(b->err, "%s: narrow_range activations ([-127, 127]) cannot be expressed by QuantizeLinear ([-128, 127])", q->tq.name);
    if (q->tq.n_amax != 1) return qb_errorf(b->err, "%s: per-channel activation quantizers are not exported", q->tq.name);
    if (q->tq.amax[0] <= FAKE_QUANT_TINY_AMAX)
        return qb_errorf(b->err, "%s: amax %g: ONNX needs a positive scale", q->tq.name, (double)q->tq.amax[0]);
    return 0;
}

/* x through an activation quantizer as QuantizeLinear -> DequantizeLinear (x itself when q is not active). */
static const char *qdq(builder *b, const char *x, const qb_quantizer *q) {
    if (!qb_export_quant_active(q) || !x) return x;
    if (check_expressible(b, q, false)) return NULL;
    const quant_desc *d = &q->tq.desc;
    const char *scale = scalar_f32(b, fmt(b, "%s.scale", q->tq.name), qb_int8_scale(q->tq.amax[0], d));
    uint8_t zero = 0;
    const char *zp = init(b, fmt(b, "%s.zero_point", q->tq.name), d->is_unsigned ? T_UINT8 : T_INT8, 0, NULL, &zero, 1);
    const char *qin[3] = {x, scale, zp};
    const char *qx = out(node(b, "QuantizeLinear", qin, 3, 1));
    const char *din[3] = {qx, scale, zp};
    b->act_pairs++;
    return out(node(b, "DequantizeLinear", din, 3, 1));
}

/* x [..., in] @ W^T + bias through the layer's quantizers. */
static const char *linear(builder *b, const qb_bert_linear *l, const char *x, bool input_quantized) {
    qb_bert_model *m = b->m;
    if (!x) return NULL;
    if (!input_quantized) x = qdq(b, x, l->in_q);
    int64_t rows = l->w->shape[0], cols = l->w->shape[1];
    float *w = malloc((size_t)(rows * cols) * sizeof(float)), *wt = malloc((size_t)(rows * cols) * sizeof(float));
    const char *wname = NULL;
    char base[256];
    snprintf(base, sizeof base, "%s", l->w->name);
    if (!w || !wt || qb_to_host(m->ctx, l->w, w)) {
        free(w);
        free(wt);
        return b->oom = true, qb_errorf(b->err, "%s: cannot read the weight: %s", l->w->name, m->ctx->err.msg), NULL;
    }
    const qb_quantizer *wq = qb_export_quant_active(l->w_q) ? l->w_q : NULL;
    if (wq && check_expressible(b, wq, true)) wq = NULL, b->oom = true;
    int64_t n = wq ? wq->tq.n_amax : 0, tdims[2] = {cols, rows}, dims[2] = {rows, cols};
    if (b->oom) {
    } else if (wq && b->mode == QB_ONNX_QDQ) {
        qb_int8_weight q;
        if (qb_int8_quantize(w, rows, cols, wq->tq.amax, n, &wq->tq.desc, &q, b->err)) {
            qb_err_context(b->err, "%s", l->w->name);
            b->oom = true;
        } else {
            int8_t *qt = (int8_t *)wt; /* W^T [in, out] */
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++) qt[c * rows + r] = q.q[r * cols + c];
            const char *qi = init(b, fmt(b, "%s_quantized", base), T_INT8, 2, tdims, qt, (size_t)(rows * cols));
            const char *sc = init_f32(b, fmt(b, "%s_scale", base), n > 1 ? 1 : 0, &n, q.scale);
            int8_t *zeros = calloc((size_t)n, 1);
            const char *zp = zeros ? init(b, fmt(b, "%s_zero_point", base), T_INT8, n > 1 ? 1 : 0, &n, zeros, (size_t)n) : NULL;
            free(zeros);
            const char *din[3] = {qi, sc, zp};
            Onnx__NodeProto *dq = node(b, "DequantizeLinear", din, 3, 1);
            if (n > 1) attr_int(b, dq, "axis", 1);
            wname = out(dq);
            b->weight_dq++;
            qb_int8_weight_free(&q);
        }
    } else if (wq) { /* HF: float W [out, in] -> Q -> DQ (axis 0) -> Transpose */
        float *sc = malloc((size_t)n * sizeof(float));
        int8_t *zeros = calloc((size_t)n, 1);
        if (!sc || !zeros) b->oom = true;
        for (int64_t k = 0; sc && k < n; k++) sc[k] = qb_int8_scale(wq->tq.amax[k], &wq->tq.desc);
        const char *wi = init_f32(b, base, 2, dims, w);
        const char *s = sc ? init_f32(b, fmt(b, "%s.scale", wq->tq.name), n > 1 ? 1 : 0, &n, sc) : NULL;
        const char *zp = zeros ? init(b, fmt(b, "%s.zero_point", wq->tq.name), T_INT8, n > 1 ? 1 : 0, &n, zeros, (size_t)n) : NULL;
        free(sc);
        free(zeros);
        const char *qin[3] = {wi, s, zp};
        Onnx__NodeProto *qn = node(b, "QuantizeLinear", qin, 3, 1);
        if (n > 1) attr_int(b, qn, "axis", 0);
        const char *din[3] = {out(qn), s, zp};
        Onnx__NodeProto *dq = node(b, "DequantizeLinear", din, 3, 1);
        if (n > 1) attr_int(b, dq, "axis", 0);
        static const int64_t perm[2] = {1, 0};
        wname = transpose(b, out(dq), 2, perm);
        b->weight_pairs++;
    } else {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) wt[c * rows + r] = w[r * cols + c];
        wname = init_f32(b, fmt(b, "%s_transposed", base), 2, tdims, wt);
    }
    free(w);
    free(wt);
    float *bias = malloc((size_t)rows * sizeof(float));
    if (!bias || qb_to_host(m->ctx, l->b, bias)) {
        free(bias);
        return b->oom = true, NULL;
    }
    const char *bname = init_f32(b, l->b->name, 1, &rows, bias);
    free(bias);
    if (b->oom) return NULL;
    return op2(b, "Add", op2(b, "MatMul", x, wname), bname);
}

/* ---- model pieces */

static const char *param(builder *b, const qb_tensor *t) {
    int64_t n = qb_numel(t);
    float *h = malloc((size_t)n * sizeof(float) + 1);
    if (!h || qb_to_host(b->m->ctx, t, h)) {
        free(h);
        return b->oom = true, NULL;
    }
    const char *name = init_f32(b, t->name, t->ndim, t->shape, h);
    free(h);
    return name;
}

/* LayerNorm from primitives (opset 13 has no LayerNormalization): the pattern torch exports and ORT fuses. */
static const char *layernorm(builder *b, const char *x, const qb_tensor *g, const qb_tensor *beta, const char *eps, const char *two) {
    static const int64_t last[1] = {-1};
    Onnx__NodeProto *mean = node(b, "ReduceMean", &x, 1, 1);
    attr_ints(b, mean, "axes", 1, last);
    const char *d = op2(b, "Sub", x, out(mean));
    const char *sq = op2(b, "Pow", d, two);
    Onnx__NodeProto *var = node(b, "ReduceMean", &sq, 1, 1);
    attr_ints(b, var, "axes", 1, last);
    const char *std = op1(b, "Sqrt", op2(b, "Add", out(var), eps));
    return op2(b, "Add", op2(b, "Mul", op2(b, "Div", d, std), param(b, g)), param(b, beta));
}

typedef struct consts {
    const char *one, *two, *half, *sqrt2, *neg_max, *score_scale, *split_heads, *merge_heads, *gelu_c, *gelu_k;
} consts;

static const char *activation(builder *b, const char *x, const consts *k) {
    switch (b->m->cfg.hidden_act) {
    case QB_ACT_GELU: /* torch's export of F.gelu: x * 0.5 * (1 + erf(x / sqrt 2)) */
        return op2(b, "Mul", op2(b, "Mul", x, op2(b, "Add", op1(b, "Erf", op2(b, "Div", x, k->sqrt2)), k->one)), k->half);
    case QB_ACT_GELU_TANH: { /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
        const char *x3 = op2(b, "Mul", op2(b, "Mul", x, x), x);
        const char *inner = op2(b, "Mul", op2(b, "Add", x, op2(b, "Mul", x3, k->gelu_k)), k->gelu_c);
        return op2(b, "Mul", op2(b, "Mul", x, k->half), op2(b, "Add", op1(b, "Tanh", inner), k->one));
    }
    case QB_ACT_RELU: return op1(b, "Relu", x);
    }
    return NULL;
}

static const char *encoder_layer(builder *b, const qb_bert_layer *ly, const char *x, const char *mask, const consts *k) {
    qb_quantizer *q = ly->q;
    bool share = b->mode == QB_ONNX_QDQ;
    const char *xq = qdq(b, x, ly->query.in_q);
    const char *xk = share && same_quantization(ly->key.in_q, ly->query.in_q) ? xq : qdq(b, x, ly->key.in_q);
    const char *xv = share && same_quantization(ly->value.in_q, ly->query.in_q) ? xq : qdq(b, x, ly->value.in_q);
    static const int64_t heads_perm[4] = {0, 2, 1, 3}, kt_perm[4] = {0, 2, 3, 1};
    const char *qh = transpose(b, op2(b, "Reshape", linear(b, &ly->query, xq, true), k->split_heads), 4, heads_perm);
    const char *kt = transpose(b, op2(b, "Reshape", linear(b, &ly->key, xk, true), k->split_heads), 4, kt_perm);
    const char *vh = transpose(b, op2(b, "Reshape", linear(b, &ly->value, xv, true), k->split_heads), 4, heads_perm);
    const char *scores = op2(b, "MatMul", qdq(b, qh, &q[QB_Q_MATMUL_Q]), qdq(b, kt, &q[QB_Q_MATMUL_K]));
    scores = op2(b, b->mode == QB_ONNX_HF ? "Div" : "Mul", scores, k->score_scale);
    Onnx__NodeProto *sm = node(b, "Softmax", (const char *[]){op2(b, "Add", scores, mask)}, 1, 1);
    attr_int(b, sm, "axis", -1);
    const char *context = op2(b, "MatMul", qdq(b, out(sm), &q[QB_Q_MATMUL_A]), qdq(b, vh, &q[QB_Q_MATMUL_V]));
    context = op2(b, "Reshape", transpose(b, context, 4, heads_perm), k->merge_heads);
    const char *a = linear(b, &ly->attn_out, context, false);
    a = op2(b, "Add", qdq(b, a, &q[QB_Q_ATTN_ADD_LOCAL]), qdq(b, x, &q[QB_Q_ATTN_ADD_RESIDUAL]));
    const char *attn = layernorm(b, a, ly->attn_ln_w, ly->attn_ln_b, "eps", k->two);
    const char *h = activation(b, linear(b, &ly->inter, attn, false), k);
    const char *o = linear(b, &ly->out, h, false);
    o = op2(b, "Add", qdq(b, o, &q[QB_Q_OUT_ADD_LOCAL]), qdq(b, attn, &q[QB_Q_OUT_ADD_RESIDUAL]));
    return layernorm(b, o, ly->out_ln_w, ly->out_ln_b, "eps", k->two);
}

static Onnx__ValueInfoProto *value_info(builder *b, const char *name, int dtype, int ndim, const char *const *dim_params, const int64_t *dims) {
    Onnx__ValueInfoProto *v = alloc(b, sizeof *v);
    Onnx__TypeProto *t = alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = alloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **ds = alloc(b, (size_t)ndim * sizeof *ds);
    if (!v || !t || !tt || !sh || !ds) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int d = 0; d < ndim; d++) {
        ds[d] = alloc(b, sizeof *ds[d]);
        if (!ds[d]) return NULL;
        onnx__tensor_shape_proto__dimension__init(ds[d]);
        if (dim_params[d]) {
            ds[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            ds[d]->dim_param = str(b, dim_params[d]);
        } else {
            ds[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            ds[d]->dim_value = dims[d];
        }
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = ds;
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = str(b, name);
    v->type = t;
    return v;
}

/* Renames the producer's output of tensor `from` to `to` (graph outputs get their public names). */
static void rename_output(builder *b, const char *from, const char *to) {
    for (size_t i = 0; from && i < b->n_nodes; i++)
        for (size_t k = 0; k < b->nodes[i]->n_output; k++)
            if (strcmp(b->nodes[i]->output[k], from) == 0) b->nodes[i]->output[k] = str(b, to);
}

static bool head_supported(qb_bert_head h) {
    return h == QB_BERT_QUESTION_ANSWERING || h == QB_BERT_SEQUENCE_CLS || h == QB_BERT_NEXT_SENTENCE || h == QB_BERT_TOKEN_CLS ||
           h == QB_BERT_MODEL;
}

static int build(builder *b, Onnx__GraphProto *g) {
    qb_bert_model *m = b->m;
    const qb_bert_config *c = &m->cfg;
    if (!head_supported(m->head))
        return qb_errorf(b->err, "ONNX export of %s is not supported (question answering, sequence/token classification, "
                                 "next sentence and BertModel are)", qb_bert_head_class(m->head));
    if (c->is_decoder) return qb_errorf(b->err, "ONNX export of a decoder (causal mask) is not supported");
    int64_t H = c->hidden_size, N = c->num_attention_heads, D = H / N;
    consts k = {0};
    k.one = scalar_f32(b, "const_one", 1.0f);
    k.two = scalar_f32(b, "const_two", 2.0f);
    if (c->hidden_act != QB_ACT_RELU) k.half = scalar_f32(b, "const_half", 0.5f);
    if (c->hidden_act == QB_ACT_GELU) k.sqrt2 = scalar_f32(b, "const_sqrt2", 1.41421353816986083984375f);
    if (c->hidden_act == QB_ACT_GELU_TANH) {
        k.gelu_c = scalar_f32(b, "const_sqrt_2_over_pi", 0.7978845608028654f);
        k.gelu_k = scalar_f32(b, "const_gelu_tanh_k", 0.044715f);
    }
    k.neg_max = scalar_f32(b, "const_mask_value", -FLT_MAX);
    k.score_scale = b->mode == QB_ONNX_HF ? scalar_f32(b, "const_sqrt_head_size", sqrtf((float)D))
                                          : scalar_f32(b, "const_inv_sqrt_head_size", (float)(1.0 / sqrt((double)D)));
    scalar_f32(b, "eps", c->layer_norm_eps);
    int64_t split[4] = {0, 0, N, D}, merge[3] = {0, 0, H}, one_i = 1, two_i = 2, zero_i = 0, axes12[2] = {1, 2}, last = -1;
    k.split_heads = ints64(b, "shape_split_heads", 4, split);
    k.merge_heads = ints64(b, "shape_merge_heads", 3, merge);
    const char *ids = "input_ids", *mask_in = "attention_mask", *types = "token_type_ids";
    /* embeddings: word + token type, then + positions 0..S-1 */
    Onnx__NodeProto *gw = node(b, "Gather", (const char *[]){param(b, m->word_emb), ids}, 2, 1);
    Onnx__NodeProto *gt = node(b, "Gather", (const char *[]){param(b, m->type_emb), types}, 2, 1);
    const char *seq = out(node(b, "Slice", (const char *[]){op1(b, "Shape", ids), ints64(b, "const_1", 1, &one_i),
                                                             ints64(b, "const_2", 1, &two_i), ints64(b, "const_0", 1, &zero_i)}, 4, 1));
    const char *pos = out(node(b, "Slice", (const char *[]){param(b, m->pos_emb), "const_0", seq, "const_0"}, 4, 1));
    const char *x = op2(b, "Add", op2(b, "Add", out(gw), out(gt)), pos);
    x = layernorm(b, x, m->emb_ln_w, m->emb_ln_b, "eps", k.two);
    /* additive mask [B, 1, 1, S]: 0 keep, -FLT_MAX drop, as HF's (1 - mask) * finfo.min */
    Onnx__NodeProto *cast = node(b, "Cast", &mask_in, 1, 1);
    attr_int(b, cast, "to", T_FLOAT);
    const char *mask = op2(b, "Mul", op2(b, "Sub", k.one, out(cast)), k.neg_max);
    mask = op2(b, "Unsqueeze", mask, ints64(b, "const_axes_1_2", 2, axes12));
    for (int i = 0; i < c->num_hidden_layers && x; i++) x = encoder_layer(b, &m->layers[i], x, mask, &k);
    if (b->oom || !x) return b->err->failed ? -1 : qb_errorf(b->err, "out of memory building the ONNX graph");

    const char *const bs[2] = {"batch_size", "seq_len"};
    const char *const *dp_seq = bs;
    const char *const dp_rows[2] = {"batch_size", NULL};
    int64_t dims[3] = {0, 0, 0};
    const char *outs[2] = {NULL, NULL}, *out_names[2] = {NULL, NULL};
    int out_nd[2] = {0, 0};
    int64_t out_last[2] = {0, 0};
    switch (m->head) {
    case QB_BERT_QUESTION_ANSWERING: {
        const char *logits = linear(b, &m->classifier, x, false); /* [B, S, 2] */
        Onnx__NodeProto *sp = node(b, "Split", &logits, 1, 2);
        attr_int(b, sp, "axis", -1);
        const char *axes = ints64(b, "const_axes_last", 1, &last);
        outs[0] = op2(b, "Squeeze", sp ? sp->output[0] : NULL, axes);
        outs[1] = op2(b, "Squeeze", sp ? sp->output[1] : NULL, axes);
        bool hf = b->mode == QB_ONNX_HF;
        out_names[0] = hf ? "output_start_logits" : "start_logits";
        out_names[1] = hf ? "output_end_logits" : "end_logits";
        out_nd[0] = out_nd[1] = 2;
        break;
    }
    case QB_BERT_TOKEN_CLS:
        outs[0] = linear(b, &m->classifier, x, false);
        out_names[0] = "logits";
        out_nd[0] = 3;
        out_last[0] = c->num_labels;
        break;
    default: { /* pooled heads and BertModel */
        Onnx__NodeProto *first = node(b, "Gather", (const char *[]){x, init(b, "const_index_0", T_INT64, 0, NULL, &zero_i, 8)}, 2, 1);
        attr_int(b, first, "axis", 1);
        const char *pooled = op1(b, "Tanh", linear(b, &m->pooler, out(first), false));
        if (m->head == QB_BERT_MODEL) {
            outs[0] = x;
            out_names[0] = "last_hidden_state";
            out_nd[0] = 3;
            out_last[0] = H;
            outs[1] = pooled;
            out_names[1] = "pooler_output";
            out_nd[1] = 2;
            out_last[1] = H;
        } else {
            outs[0] = linear(b, &m->classifier, pooled, false);
            out_names[0] = "logits";
            out_nd[0] = 2;
            out_last[0] = m->head == QB_BERT_NEXT_SENTENCE ? 2 : c->num_labels;
        }
        break;
    }
    }
    if (b->oom || !outs[0]) return b->err->failed ? -1 : qb_errorf(b->err, "out of memory building the ONNX graph");
    int n_out = outs[1] ? 2 : 1;
    Onnx__ValueInfoProto **gout = alloc(b, 2 * sizeof *gout), **gin = alloc(b, 3 * sizeof *gin);
    if (!gout || !gin) return qb_errorf(b->err, "out of memory building the ONNX graph");
    for (int i = 0; i < n_out; i++) {
        rename_output(b, outs[i], out_names[i]);
        /* [batch, seq] (QA), [batch, seq, last] (token logits, hidden states), [batch, last] (pooled) */
        const char *dp[3] = {"batch_size", "seq_len", NULL};
        bool pooled = out_nd[i] == 2 && m->head != QB_BERT_QUESTION_ANSWERING;
        if (pooled) dp[1] = NULL;
        dims[0] = dims[1] = dims[2] = 0;
        if (out_last[i]) dims[out_nd[i] - 1] = out_last[i];
        gout[i] = value_info(b, out_names[i], T_FLOAT, out_nd[i], pooled ? dp_rows : dp, dims);
    }
    gin[0] = value_info(b, ids, T_INT64, 2, dp_seq, dims);
    gin[1] = value_info(b, mask_in, T_INT64, 2, dp_seq, dims);
    gin[2] = value_info(b, types, T_INT64, 2, dp_seq, dims);
    if (b->oom) return qb_errorf(b->err, "out of memory building the ONNX graph");
    g->name = str(b, b->mode == QB_ONNX_HF ? "torch_jit" : "qdqbert");
    g->n_node = b->n_nodes;
    g->node = b->nodes;
    g->n_initializer = b->n_inits;
    g->initializer = b->inits;
    g->n_input = 3;
    g->input = gin;
    g->n_output = (size_t)n_out;
    g->output = gout;
    return 0;
}

int qb_onnx_export(qb_bert_model *m, const qb_onnx_export_opts *o, const char *path, qb_err *err) {
    if (qb_export_check_quantizers(m, err)) return qb_err_context(err, "%s", path);
    builder b = {.m = m, .mode = o->mode, .err = err};
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    int rc = build(&b, &g);
    if (rc) qb_err_context(err, "%s", path);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!rc) {
        Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
        opset.domain = "";
        opset.has_version = 1;
        opset.version = OPSET;
        Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
        model.has_ir_version = 1;
        model.ir_version = IR_VERSION;
        model.n_opset_import = 1;
        model.opset_import = opsets;
        model.producer_name = "qdqbert";
        model.producer_version = "0.1.0";
        model.doc_string = o->mode == QB_ONNX_HF ? "HF save_onnx layout: float weights with QuantizeLinear/DequantizeLinear"
                                                 : "QDQ: int8 weights with DequantizeLinear, activations QuantizeLinear/DequantizeLinear";
        model.graph = &g;
        len = onnx__model_proto__get_packed_size(&model);
        if (len > (size_t)INT32_MAX) rc = qb_errorf(err, "%s: %zu bytes exceed protobuf's 2 GiB limit", path, len);
        else if (!(buf = malloc(len))) rc = qb_errorf(err, "%s: out of memory (%zu bytes)", path, len);
        else if (onnx__model_proto__pack(&model, buf) != len) rc = qb_errorf(err, "%s: protobuf packing failed", path);
    }
    if (!rc) rc = qb_write_file_atomic(path, buf, len, err);
    if (!rc && o->log) {
        fprintf(o->log, "export: wrote %s (%s graph, opset %d, %.1f MiB): %zu nodes, %d activation Q/DQ pairs, ", o->log_path ? o->log_path : path,
                o->mode == QB_ONNX_HF ? "HF save_onnx-style" : "QDQ", OPSET, (double)len / 1048576.0, b.n_nodes, b.act_pairs);
        if (o->mode == QB_ONNX_HF) fprintf(o->log, "%d weight Q/DQ pairs\n", b.weight_pairs);
        else fprintf(o->log, "%d int8 weights with DequantizeLinear\n", b.weight_dq);
        int groups = qb_export_report_unequal_scales(m, "export: TensorRT fusion", o->log);
        if (groups) fprintf(o->log, "export: TensorRT fusion: %d group%s of quantizers on one tensor with unequal scales (fuse-qkv "
                                    "style ties make them equal)\n", groups, groups > 1 ? "s" : "");
        else fprintf(o->log, "export: TensorRT fusion: quantizers reading one tensor share their scale\n");
    }
    free(buf);
    for (size_t i = 0; i < b.n_allocs; i++) free(b.allocs[i]);
    free(b.allocs);
    free(b.nodes);
    free(b.inits);
    return rc;
}

#else

int qb_onnx_export(qb_bert_model *m, const qb_onnx_export_opts *o, const char *path, qb_err *err) {
    (void)m, (void)o;
    return qb_errorf(err, "%s: this build has no ONNX support (install protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev)", path);
}

#endif

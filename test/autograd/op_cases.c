/* op_cases.c: see op_cases.h. Each forward composes engine ops exactly as the PyTorch generator does. */
#include "op_cases.h"

#include <string.h>

static qb_tensor *f_matmul_nn(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_matmul(c, in[0], in[1], false, false); }
static qb_tensor *f_matmul_tn(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_matmul(c, in[0], in[1], true, false); }
static qb_tensor *f_matmul_nt(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_matmul(c, in[0], in[1], false, true); }
static qb_tensor *f_matmul_tt(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_matmul(c, in[0], in[1], true, true); }
static qb_tensor *f_matmul_view(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;  /* a [2,3,4,5] @ (b [2,3,6,5])^T via a transposed strided view */
    return qb_matmul(c, in[0], qb_transpose(c, in[1], 2, 3), false, false);
}
static qb_tensor *f_linear(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_linear(c, in[0], in[1], in[2]); }
static qb_tensor *f_linear_nobias(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_linear(c, in[0], in[1], NULL); }
static qb_tensor *f_add(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_add(c, in[0], in[1]); }
static qb_tensor *f_sub(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_sub(c, in[0], in[1]); }
static qb_tensor *f_mul(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_mul(c, in[0], in[1]); }
static qb_tensor *f_scale(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_scale(c, in[0], 0.125f); }
static qb_tensor *f_bias_add(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_bias_add(c, in[0], in[1]); }
static qb_tensor *f_gelu(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_gelu(c, in[0]); }
static qb_tensor *f_gelu_tanh(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_gelu_tanh(c, in[0]); }
static qb_tensor *f_tanh(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_tanh(c, in[0]); }
static qb_tensor *f_relu(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_relu(c, in[0]); }
static qb_tensor *f_layernorm(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_layernorm(c, in[0], in[1], in[2], 1e-12f); }
static qb_tensor *f_layernorm_eps(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_layernorm(c, in[0], in[1], in[2], 1e-5f); }
static qb_tensor *f_layernorm_plain(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_layernorm(c, in[0], NULL, NULL, 1e-5f); }
static qb_tensor *f_softmax_masked(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_softmax(c, in[0], 0.5f, in[1]); }
static qb_tensor *f_softmax_plain(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_softmax(c, in[0], 1.0f, NULL); }
static qb_tensor *f_dropout(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_dropout(c, in[0], 0.3f); }
static qb_tensor *f_embedding(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    return qb_embedding(c, in[0], a->ints, a->ints_ndim, a->ints_shape);
}
static qb_tensor *f_permute_contiguous(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    static const int perm[4] = {0, 2, 1, 3};
    return qb_contiguous(c, qb_permute(c, in[0], perm));
}
static qb_tensor *f_split_heads(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_split_heads(c, in[0], 2); }
static qb_tensor *f_merge_heads(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_merge_heads(c, in[0]); }
static qb_tensor *f_slice_mid(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_slice(c, in[0], 1, 2, 3); }
static qb_tensor *f_reshape(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    int64_t shape[2] = {-1, 6};
    return qb_reshape(c, qb_transpose(c, in[0], 0, 1), 2, shape);
}
/* gradient buffers handed on between ops: an input used twice, and a chain of element-for-element ops */
static qb_tensor *f_add_self(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_sub(c, qb_add(c, in[0], in[0]), qb_scale(c, in[0], 0.5f)); }
static qb_tensor *f_shared_chain(qb_ctx *c, qb_tensor **in, const op_case_aux *a) {
    (void)a;
    qb_tensor *g = qb_gelu(c, qb_scale(c, in[0], 1.5f));
    qb_tensor *m = qb_mul(c, qb_reshape(c, g, 2, (int64_t[]){4, 6}), qb_reshape(c, in[0], 2, (int64_t[]){4, 6}));
    return qb_layernorm(c, qb_dropout(c, qb_tanh(c, m), 0.2f), in[1], NULL, 1e-5f);
}
static qb_tensor *f_sum(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_sum(c, in[0]); }
static qb_tensor *f_mean(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_mean(c, in[0]); }
static qb_tensor *f_cross_entropy(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { return qb_cross_entropy(c, in[0], a->ints, -100); }
static qb_tensor *f_mse(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_mse_loss(c, in[0], in[1]); }
static qb_tensor *f_bce(qb_ctx *c, qb_tensor **in, const op_case_aux *a) { (void)a; return qb_bce_with_logits(c, in[0], in[1]); }

#define S2(a, b) {a, b}
#define S3(a, b, c) {a, b, c}
#define S4(a, b, c, d) {a, b, c, d}

const op_case op_cases[] = {
    {"matmul_nn", 2, {2, 2}, {S2(5, 7), S2(7, 3)}, {1, 1}, f_matmul_nn, 0, 0},
    {"matmul_tn", 2, {2, 2}, {S2(7, 5), S2(7, 3)}, {1, 1}, f_matmul_tn, 0, 0},
    {"matmul_nt", 2, {2, 2}, {S2(5, 7), S2(3, 7)}, {1, 1}, f_matmul_nt, 0, 0},
    {"matmul_tt", 2, {2, 2}, {S2(7, 5), S2(3, 7)}, {1, 1}, f_matmul_tt, 0, 0},
    {"matmul_batched", 2, {4, 4}, {S4(2, 3, 4, 5), S4(2, 3, 5, 6)}, {1, 1}, f_matmul_nn, 0, 0},
    {"matmul_shared_b", 2, {4, 2}, {S4(2, 3, 4, 5), S2(5, 6)}, {1, 1}, f_matmul_nn, 0, 0},
    {"matmul_strided_view", 2, {4, 4}, {S4(2, 3, 4, 5), S4(2, 3, 6, 5)}, {1, 1}, f_matmul_view, 0, 0},
    {"linear_bias", 3, {3, 2, 1}, {S3(2, 3, 8), S2(6, 8), {6}}, {1, 1, 1}, f_linear, 0, 0},
    {"linear_nobias", 2, {2, 2}, {S2(4, 8), S2(6, 8)}, {1, 1}, f_linear_nobias, 0, 0},
    {"add_same", 2, {2, 2}, {S2(3, 4), S2(3, 4)}, {1, 1}, f_add, 0, 0},
    {"add_bcast_mid", 2, {3, 3}, {S3(2, 3, 4), S3(2, 1, 4)}, {1, 1}, f_add, 0, 0},
    {"sub_bcast_last", 2, {3, 1}, {S3(2, 3, 4), {4}}, {1, 1}, f_sub, 0, 0},
    {"mul_bcast", 2, {3, 2}, {S3(2, 3, 4), S2(3, 1)}, {1, 1}, f_mul, 0, 0},
    {"add_bcast_lead1", 2, {3, 3}, {S3(2, 3, 4), S3(1, 3, 4)}, {1, 1}, f_add, 0, 0},
    {"mul_bcast_lead1", 2, {3, 2}, {S3(2, 3, 4), S2(1, 4)}, {1, 1}, f_mul, 0, 0},
    {"scale", 1, {2}, {S2(3, 5)}, {1}, f_scale, 0, 0},
    {"bias_add", 2, {3, 1}, {S3(2, 3, 5), {5}}, {1, 1}, f_bias_add, 0, 0},
    {"gelu", 1, {2}, {S2(4, 6)}, {1}, f_gelu, 0, 0},
    {"gelu_tanh", 1, {2}, {S2(4, 6)}, {1}, f_gelu_tanh, 0, 0},
    {"tanh", 1, {2}, {S2(4, 6)}, {1}, f_tanh, 0, 0},
    {"relu", 1, {2}, {S2(4, 6)}, {1}, f_relu, 0, 1},
    {"layernorm", 3, {3, 1, 1}, {S3(3, 4, 16), {16}, {16}}, {1, 1, 1}, f_layernorm, 0, 0},
    {"layernorm_eps", 3, {2, 1, 1}, {S2(5, 8), {8}, {8}}, {1, 1, 1}, f_layernorm_eps, 0, 0},
    {"layernorm_plain", 1, {2}, {S2(5, 8)}, {1}, f_layernorm_plain, 0, 0},
    {"softmax_masked", 2, {4, 4}, {S4(2, 3, 5, 5), S4(2, 1, 1, 5)}, {1, 0}, f_softmax_masked, 0, 0},
    {"softmax_plain", 1, {2}, {S2(4, 7)}, {1}, f_softmax_plain, 0, 0},
    {"dropout", 1, {2}, {S2(8, 16)}, {1}, f_dropout, 1, 0},
    {"embedding", 1, {2}, {S2(10, 6)}, {1}, f_embedding, 0, 0},
    {"permute_contiguous", 1, {4}, {S4(2, 3, 4, 5)}, {1}, f_permute_contiguous, 0, 0},
    {"split_heads", 1, {3}, {S3(2, 3, 8)}, {1}, f_split_heads, 0, 0},
    {"merge_heads", 1, {4}, {S4(2, 2, 3, 4)}, {1}, f_merge_heads, 0, 0},
    {"slice_mid", 1, {3}, {S3(3, 6, 4)}, {1}, f_slice_mid, 0, 0},
    {"reshape_of_view", 1, {2}, {S2(4, 3)}, {1}, f_reshape, 0, 0},
    {"add_self", 1, {2}, {S2(3, 4)}, {1}, f_add_self, 0, 0},
    {"shared_chain", 2, {3, 1}, {S3(2, 2, 6), {6}}, {1, 1}, f_shared_chain, 1, 0},
    {"sum", 1, {2}, {S2(3, 4)}, {1}, f_sum, 0, 0},
    {"mean", 1, {2}, {S2(3, 4)}, {1}, f_mean, 0, 0},
    {"cross_entropy", 1, {2}, {S2(6, 5)}, {1}, f_cross_entropy, 0, 0},
    {"mse", 2, {2, 2}, {S2(3, 4), S2(3, 4)}, {1, 1}, f_mse, 0, 0},
    {"bce_with_logits", 2, {2, 2}, {S2(3, 4), S2(3, 4)}, {1, 0}, f_bce, 0, 0},
};
const int n_op_cases = (int)(sizeof op_cases / sizeof op_cases[0]);

const op_case *op_case_find(const char *name) {
    for (int i = 0; i < n_op_cases; i++)
        if (strcmp(op_cases[i].name, name) == 0) return &op_cases[i];
    return NULL;
}

static const int32_t embedding_ids[8] = {1, 4, 4, 0, 9, 2, 1, 1};
static const int32_t ce_labels[6] = {2, -100, 0, 4, 1, -100};

op_case_aux op_case_default_aux(const op_case *c) {
    op_case_aux a = {0};
    if (strcmp(c->name, "embedding") == 0) {
        a.ints = embedding_ids;
        a.n_ints = 8;
        a.ints_ndim = 2;
        a.ints_shape[0] = 2;
        a.ints_shape[1] = 4;
    } else if (strcmp(c->name, "cross_entropy") == 0) {
        a.ints = ce_labels;
        a.n_ints = 6;
        a.ints_ndim = 1;
        a.ints_shape[0] = 6;
    }
    return a;
}

/* test_cuda_ops.c: every op case of the op test table (test/autograd/op_cases.c), forward and every input gradient,
 * on the CUDA backend against the CPU backend (|cuda - cpu| <= 1e-5 max|cpu| + 1e-5 |cpu| per tensor: the same math,
 * other summation orders) and against the PyTorch fixtures (the CPU test's tolerance). Runs on a real GPU, or on the
 * CPU under the CUDA emulator (-Dgpu_emu=true); exits 77 where neither is there.
 * QB_CUDA_OPS=name,name restricts the cases; QB_CUDA_ALLOW_MISSING=1 counts an op without a cuda kernel as skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "fixture.h"
#include "op_eval.h"

static bool selected(const char *name) {
    const char *list = getenv("QB_CUDA_OPS");
    if (!list || !*list) return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && strncmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* cuda vs cpu for one tensor, with the tolerance scaled by the tensor's largest cpu value. */
static void compare(qb_check *chk, const char *what, const float *got, const float *want, int64_t n) {
    qb_check_close(chk, what, got, want, n, 1e-5 * max_abs(want, n) + 1e-30, 1e-5);
}

/* The torch fixture entry of case `name`: output, upstream gradient and input gradients (NULL when absent). */
typedef struct torch_case {
    float *out, *up, *grads[OP_CASE_MAX_IN];
    int64_t n_out;
} torch_case;

static bool torch_case_load(json_t *root, const op_case *c, torch_case *t) {
    memset(t, 0, sizeof *t);
    json_t *cs = json_object_get(json_object_get(root, "cases"), c->name);
    if (!cs) return false;
    int nd;
    int64_t shape[4], n;
    t->out = qb_fixture_tensor(json_object_get(cs, "output"), &nd, shape, &t->n_out);
    t->up = qb_fixture_tensor(json_object_get(cs, "upstream"), &nd, shape, &n);
    for (int i = 0; i < c->n_in; i++)
        if (c->differentiable[i]) t->grads[i] = qb_fixture_tensor(json_array_get(json_object_get(cs, "grads"), (size_t)i), &nd, shape, &n);
    return t->out && t->up;
}

static void torch_case_free(torch_case *t) {
    free(t->out);
    free(t->up);
    for (int i = 0; i < OP_CASE_MAX_IN; i++) free(t->grads[i]);
}

/* Fixture inputs of case c into in[] (false when the fixture has none or they do not match the case). */
static bool torch_inputs(json_t *root, const op_case *c, float **in) {
    json_t *inputs = json_object_get(json_object_get(json_object_get(root, "cases"), c->name), "inputs");
    if ((int)json_array_size(inputs) != c->n_in) return false;
    for (int i = 0; i < c->n_in; i++) {
        int nd;
        int64_t shape[4], n;
        in[i] = qb_fixture_tensor(json_array_get(inputs, (size_t)i), &nd, shape, &n);
        if (!in[i] || nd != c->ndim[i] || memcmp(shape, c->shape[i], (size_t)nd * sizeof(int64_t)) != 0) return false;
    }
    return true;
}

int main(void) {
    qb_check chk = {0};
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda ops", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda ops");
    }
    bool allow_missing = getenv("QB_CUDA_ALLOW_MISSING") && atoi(getenv("QB_CUDA_ALLOW_MISSING"));
    qb_err err = {0};
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 9, &err), *gpu = cpu ? qb_ctx_new(QB_CUDA, 9, &err) : NULL;
    if (!gpu) qb_die("test_cuda_ops", &err);
    json_t *root = qb_fixture_load("test/autograd/fixtures/ops_torch.json", &err);
    if (!root) qb_die("test_cuda_ops", &err);
    int compared = 0, missing = 0;
    for (int ci = 0; ci < n_op_cases; ci++) {
        const op_case *c = &op_cases[ci];
        if (!selected(c->name)) continue;
        op_case_aux aux = op_case_default_aux(c);
        char what[160];
        /* 1. random inputs and upstream gradient: cuda against cpu */
        float *in[OP_CASE_MAX_IN] = {NULL};
        for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
        op_case_fill_inputs(c, in, 31 + (uint64_t)ci);
        op_eval_result a, b;
        int ra = op_eval(cpu, c, in, &aux, NULL, &a);
        float *up = ra ? NULL : malloc((size_t)(a.out_n + 1) * sizeof(float));
        if (up) qb_rng_normal(up, a.out_n, 0.0f, 1.0f, 77, (uint64_t)ci);
        op_eval_result_free(&a);
        ra = ra || op_eval(cpu, c, in, &aux, up, &a);
        int rb = op_eval(gpu, c, in, &aux, up, &b);
        if (rb && allow_missing && strstr(gpu->err.msg, "no cuda kernel")) {
            missing++;
            snprintf(what, sizeof what, "%s on cuda", c->name);
            qb_check_skip(&chk, what, gpu->err.msg);
        } else if (CHECK(&chk, ra == 0 && rb == 0, "%s: cpu (%s) and cuda (%s) run", c->name, cpu->err.msg, gpu->err.msg)) {
            compared++;
            snprintf(what, sizeof what, "%s output: cuda vs cpu", c->name);
            if (CHECK(&chk, a.out_n == b.out_n, "%s: output sizes %lld vs %lld", c->name, (long long)b.out_n, (long long)a.out_n))
                compare(&chk, what, b.out, a.out, a.out_n);
            for (int i = 0; i < c->n_in; i++) {
                if (!c->differentiable[i]) continue;
                snprintf(what, sizeof what, "%s grad of input %d: cuda vs cpu", c->name, i);
                compare(&chk, what, b.grads[i], a.grads[i], op_case_numel(c, i));
            }
        }
        op_eval_result_free(&a);
        op_eval_result_free(&b);
        free(up);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
        if (rb) continue;
        /* 2. the fixture's inputs: cuda against torch */
        torch_case t;
        float *tin[OP_CASE_MAX_IN] = {NULL};
        if (torch_case_load(root, c, &t) && torch_inputs(root, c, tin)) {
            op_case_aux taux = op_case_default_aux(c);
            int32_t *ints = NULL;
            json_t *ji = json_object_get(json_object_get(json_object_get(root, "cases"), c->name), "ints");
            if (ji) {
                ints = qb_fixture_ints(ji, &taux.n_ints);
                taux.ints = ints;
            }
            if (CHECK(&chk, op_eval(gpu, c, tin, &taux, t.up, &b) == 0, "%s (torch inputs) on cuda: %s", c->name, gpu->err.msg)) {
                snprintf(what, sizeof what, "%s output: cuda vs torch", c->name);
                if (CHECK(&chk, b.out_n == t.n_out, "%s: output has %lld elements, torch %lld", c->name, (long long)b.out_n, (long long)t.n_out))
                    qb_check_close(&chk, what, b.out, t.out, t.n_out, 2e-5, 1e-4);
                for (int i = 0; i < c->n_in; i++) {
                    if (!t.grads[i]) continue;
                    snprintf(what, sizeof what, "%s grad of input %d: cuda vs torch", c->name, i);
                    qb_check_close(&chk, what, b.grads[i], t.grads[i], op_case_numel(c, i), 2e-5, 1e-4);
                }
                op_eval_result_free(&b);
            }
            free(ints);
        }
        torch_case_free(&t);
        for (int i = 0; i < c->n_in; i++) free(tin[i]);
    }
    printf("%d op cases compared on cuda, %d without a cuda kernel\n", compared, missing);
    json_decref(root);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "cuda ops");
}

/* test_remote.c: every op case (forward and every input gradient) on the remote test device, whose memory the host
 * cannot read (test/common/remote_device.h), equals the CPU bit for bit: the shells, tensor.c and graph.c reach tensor
 * memory only through the kernel table. Also the explicit memory calls on it (strided download, item, uploads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "op_eval.h"
#include "remote_device.h"

static int64_t differ(const float *a, const float *b, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += memcmp(a + i, b + i, sizeof(float)) != 0;
    return k;
}

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 9, &err), *rem = cpu ? remote_ctx_new(9, &err) : NULL;
    if (!rem) qb_die("test_remote", &err);
    for (int ci = 0; ci < n_op_cases; ci++) {
        const op_case *c = &op_cases[ci];
        float *in[OP_CASE_MAX_IN] = {NULL};
        for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
        op_case_fill_inputs(c, in, 31 + (uint64_t)ci);
        op_case_aux aux = op_case_default_aux(c);
        op_eval_result a, b;
        int ra = op_eval(cpu, c, in, &aux, NULL, &a);
        float *up = ra ? NULL : malloc((size_t)(a.out_n + 1) * sizeof(float));
        if (up) qb_rng_normal(up, a.out_n, 0.0f, 1.0f, 77, (uint64_t)ci);
        op_eval_result_free(&a);
        ra = ra || op_eval(cpu, c, in, &aux, up, &a);
        int rb = op_eval(rem, c, in, &aux, up, &b);
        if (CHECK(&chk, ra == 0 && rb == 0, "%s: cpu (%s) and remote (%s) run", c->name, cpu->err.msg, rem->err.msg)) {
            int64_t bad = a.out_n == b.out_n ? differ(a.out, b.out, a.out_n) : -1;
            for (int i = 0; i < c->n_in; i++)
                if (c->differentiable[i]) bad += differ(a.grads[i], b.grads[i], op_case_numel(c, i));
            CHECK(&chk, bad == 0, "%s: remote forward and gradients equal the cpu's bit for bit (%lld differ)", c->name, (long long)bad);
        }
        op_eval_result_free(&a);
        op_eval_result_free(&b);
        free(up);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
    }
    printf("%d op cases compared\n", n_op_cases);

    qb_ctx_step_reset(rem);
    float h[24], back[24];
    for (int i = 0; i < 24; i++) h[i] = (float)i;
    qb_tensor *t = qb_from_host(rem, 3, (int64_t[]){2, 3, 4}, h);
    qb_tensor *v = qb_transpose(rem, t, 0, 2);
    CHECK(&chk, qb_to_host(rem, v, back) == 0 && back[1] == 12.0f && back[2] == 4.0f, "strided download of a remote view: %s", rem->err.msg);
    CHECK(&chk, qb_item(rem, qb_sum(rem, t)) == 276.0f, "item on the remote device");
    qb_tensor row = qb_view_rows(t, 1, 1);
    CHECK(&chk, qb_fill(rem, &row, -1.0f) == 0 && qb_to_host(rem, t, back) == 0 && back[11] == 11.0f && back[12] == -1.0f && back[23] == -1.0f,
          "row view filled on the remote device");
    qb_ctx_free(rem);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "remote device");
}

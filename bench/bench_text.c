/* bench_text.c: tokenisation + SQuAD feature creation throughput on all of dev-v1.1, next to HF's fast tokenizer
 * pipeline (bench/bench_text_hf.py, run as a subprocess in the same run when a Python with transformers is found).
 * Usage: bench_text [squad_dir] [tokenizer_dir]; env QB_REF_PYTHON picks the Python (default /work/refenv/bin/python). */
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/squad_features.h"

static int run_hf(const char *root, const char *squad_dir, const char *tok_dir, int max_len, int stride, int repeats,
                  double *eps, long *features, double *tok_eps) {
    const char *py = getenv("QB_REF_PYTHON");
    if (!py) py = "/work/refenv/bin/python";
    if (access(py, X_OK) != 0) return -1;
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' '%s/bench/bench_text_hf.py' '%s' '%s' %d %d %d 2>/dev/null", py, root, squad_dir,
             tok_dir, max_len, stride, repeats);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "hf examples/s %lf features %ld tokenizer_only_examples/s %lf", eps, features, tok_eps) == 3) found = 1;
    int rc = pclose(p);
    return found && rc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *root = getenv("QB_SOURCE_ROOT");
    if (!root) root = ".";
    char squad_dir[4096], tok_dir[4096], path[4200];
    const char *env_dir = getenv("QB_SQUAD_DIR");
    snprintf(squad_dir, sizeof squad_dir, "%s", argc > 1 ? argv[1] : env_dir ? env_dir : "../shared/data/squad");
    if (argc > 2) snprintf(tok_dir, sizeof tok_dir, "%s", argv[2]);
    else snprintf(tok_dir, sizeof tok_dir, "%s/test/text/fixtures/minilm-uncased", root);
    snprintf(path, sizeof path, "%s/dev-v1.1.json.gz", squad_dir);
    qb_err err = {0};
    qb_squad_set dev;
    qb_tokenizer tok;
    if (qb_squad_read(path, false, &dev, &err) || qb_tokenizer_load(&tok, tok_dir, &err)) {
        fprintf(stderr, "bench_text: %s\n", err.msg);
        return 1;
    }
    printf("SQuAD dev-v1.1: %ld examples, %ld contexts; tokenizer %s\n", (long)dev.n, (long)dev.n_contexts, tok_dir);
    {
        qb_tokens q = {0}, c = {0};
        double best = 1e30;
        long n_tok = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = bench_now();
            n_tok = 0;
            for (int64_t i = 0; i < dev.n; i++) {
                const char *ctx = dev.contexts[dev.ex[i].context];
                if (qb_tokenize(&tok, ctx, strlen(ctx), &c, &err) ||
                    qb_tokenize(&tok, dev.ex[i].question, strlen(dev.ex[i].question), &q, &err)) {
                    fprintf(stderr, "bench_text: %s\n", err.msg);
                    return 1;
                }
                n_tok += (long)(c.n + q.n);
            }
            double dt = bench_now() - t0;
            if (dt < best) best = dt;
        }
        printf("tokenize question + context of every example (no context reuse): %.1f examples/s, %.2f M tokens/s\n",
               (double)dev.n / best, (double)n_tok / best / 1e6);
        qb_tokens_free(&q);
        qb_tokens_free(&c);
    }
    const int configs[2][2] = {{384, 128}, {128, 32}};
    const int repeats = 3;
    for (int ci = 0; ci < 2; ci++) {
        qb_squad_feature_opts o = {.max_seq_length = configs[ci][0], .doc_stride = configs[ci][1]};
        double best = 1e30;
        long n_feat = 0;
        for (int r = 0; r < repeats; r++) {
            qb_squad_features f = {0};
            double t0 = bench_now();
            if (qb_squad_features_build(&tok, &dev, NULL, 0, &o, &f, &err)) {
                fprintf(stderr, "bench_text: %s\n", err.msg);
                return 1;
            }
            double dt = bench_now() - t0;
            if (dt < best) best = dt;
            n_feat = (long)f.n;
            qb_squad_features_free(&f);
        }
        double c_eps = (double)dev.n / best;
        printf("%d/%d  C (1 thread):   %9.1f examples/s  (%ld features, best of %d: %.3f s; each context tokenised once)\n", o.max_seq_length,
               o.doc_stride, c_eps, n_feat, repeats, best);
        double hf_eps, hf_tok_eps;
        long hf_feat;
        if (run_hf(root, squad_dir, tok_dir, o.max_seq_length, o.doc_stride, repeats, &hf_eps, &hf_feat, &hf_tok_eps) == 0) {
            printf("%d/%d  HF run_qa:      %9.1f examples/s  (%ld features; tokenizer call alone %.1f examples/s)\n",
                   o.max_seq_length, o.doc_stride, hf_eps, hf_feat, hf_tok_eps);
            printf("%d/%d  ratio C / HF:   %9.2fx (vs tokenizer call alone %.2fx)%s\n", o.max_seq_length, o.doc_stride,
                   c_eps / hf_eps, c_eps / hf_tok_eps, hf_feat == n_feat ? "" : "  FEATURE COUNTS DIFFER");
        } else {
            printf("%d/%d  HF run_qa:      not measured (no Python with transformers; set QB_REF_PYTHON)\n", o.max_seq_length,
                   o.doc_stride);
        }
    }
    qb_tokenizer_free(&tok);
    qb_squad_free(&dev);
    return 0;
}

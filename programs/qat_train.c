/* qat_train.c: the qat-train program: one run config (INI) plus section.key=value overrides, and the task it names:
 * calibrate, train, eval, qat (calibrate -> train -> eval) on SQuAD, or demo. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "demo_task.h"
#include "qat_config.h"
#include "run_output.h"
#include "squad_tasks.h"

static void usage(FILE *out) {
    qat_config c;
    qat_config_defaults(&c);
    fprintf(out, "usage: qat-train CONFIG.ini [section.key=value ...]\n       qat-train --help\n\nkeys and defaults:\n");
    qat_config_print(&c, out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    qb_err err = {0};
    qat_config c;
    qat_config_defaults(&c);
    qat_config_source src = {.path = argv[1], .argc = argc - 2, .argv = argv + 2};
    if (qat_config_load(&c, &src, &err) || qat_config_validate(&c, &src, &err)) qb_die("qat-train", &err);
    if (c.threads > 0) omp_set_num_threads((int)c.threads);
    run_output out;
    if (run_output_open(&out, &c, &src, &err)) qb_die("qat-train", &err);
    int rc = strcmp(c.task, "demo") == 0 ? demo_task_run(&c, &err) : squad_task_run(&c, &src, &err);
    run_output_close(&out, rc != 0);
    if (rc) qb_die("qat-train", &err);
    return 0;
}

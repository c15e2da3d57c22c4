/* fuzz_squad.c: the streaming SQuAD reader on arbitrary JSON (first byte: bit 0 skips bad examples); a set that reads
 * has ids that are found and answers inside their contexts. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "fuzz_common.h"
#include "text/utf8.h"
#include "train/squad_data.h"

int fuzz_squad_check(const char *path, bool skip_bad);

int fuzz_squad_check(const char *path, bool skip_bad) {
    qb_squad_set set;
    qb_err err = {0};
    if (!path || qb_squad_read(path, skip_bad, &set, &err)) return 0;
    for (int64_t i = 0; i < set.n; i++) {
        const qb_squad_example *e = &set.ex[i];
        if (qb_squad_find(&set, e->id) != i) __builtin_trap();  /* ids are unique */
        const char *ctx = set.contexts[e->context];
        int64_t chars = qb_utf8_count(ctx, strlen(ctx));
        for (int32_t k = 0; k < e->n_answers; k++)
            if (e->answers[k].start < 0 || e->answers[k].start + (int64_t)e->answers[k].len > chars) __builtin_trap();
    }
    qb_squad_keep_first(&set, 1);
    qb_squad_free(&set);
    return 0;
}

#ifndef FUZZ_SQUAD_GZ
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    return fuzz_squad_check(fuzz_write("train.json", data + 1, size - 1), data[0] & 1);
}
#endif

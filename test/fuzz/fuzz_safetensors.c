/* fuzz_safetensors.c: the safetensors reader on arbitrary files: header JSON, dtypes, shapes, offsets, holes and
 * overlaps; every tensor of a file that opens is converted (F32/F16/BF16 to float, I32/I64 to int32). */
#include <stdlib.h>
#include "fuzz_common.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    qb_safetensors f;
    qb_err err = {0};
    if (!path || qb_st_open(&f, path, &err)) return 0;
    for (int i = 0; i < f.n; i++) {
        const qb_st_tensor *t = &f.tensors[i];
        void *buf = malloc((size_t)t->numel * 4 + 4);
        if (!buf) continue;
        qb_err e = {0};
        if (t->dtype == QB_ST_I32 || t->dtype == QB_ST_I64) qb_st_read_i32(&f, t, buf, &e);
        else qb_st_read_f32(&f, t, buf, &e);
        free(buf);
        if (qb_st_find(&f, t->name) == NULL) abort();  /* every parsed tensor is found by its name */
    }
    qb_st_close(&f);
    return 0;
}

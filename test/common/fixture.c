/* fixture.c: see fixture.h. */
#include "fixture.h"

#include <stdlib.h>
#include "check.h"

json_t *qb_fixture_load(const char *rel_path, qb_err *err) {
    json_error_t je;
    const char *path = qb_test_path(rel_path);
    json_t *root = json_load_file(path, 0, &je);
    if (!root) qb_errorf(err, "%s:%d: %s", path, je.line, je.text);
    return root;
}

static int64_t flatten_count(json_t *a) {
    if (!json_is_array(a)) return 1;
    int64_t n = 0;
    for (size_t i = 0; i < json_array_size(a); i++) n += flatten_count(json_array_get(a, i));
    return n;
}

static void flatten_ints(json_t *a, int32_t *out, int64_t *k) {
    if (!json_is_array(a)) {
        out[(*k)++] = (int32_t)json_integer_value(a);
        return;
    }
    for (size_t i = 0; i < json_array_size(a); i++) flatten_ints(json_array_get(a, i), out, k);
}

float *qb_fixture_tensor(json_t *t, int *ndim, int64_t *shape, int64_t *n) {
    json_t *sh = json_object_get(t, "shape"), *data = json_object_get(t, "data");
    if (!json_is_array(sh) || !json_is_array(data) || json_array_size(sh) > 4) return NULL;
    int64_t cnt = 1;
    *ndim = (int)json_array_size(sh);
    for (int d = 0; d < *ndim; d++) {
        shape[d] = json_integer_value(json_array_get(sh, (size_t)d));
        cnt *= shape[d];
    }
    if ((int64_t)json_array_size(data) != cnt) return NULL;
    float *out = malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
    if (!out) return NULL;
    for (int64_t i = 0; i < cnt; i++) {
        json_t *v = json_array_get(data, (size_t)i);
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            out[i] = s[0] == 'n' ? __builtin_nanf("") : s[0] == '-' ? -__builtin_inff() : __builtin_inff();
        } else {
            out[i] = (float)json_number_value(v);
        }
    }
    if (n) *n = cnt;
    return out;
}

int32_t *qb_fixture_ints(json_t *arr, int64_t *n) {
    int64_t cnt = flatten_count(arr), k = 0;
    int32_t *out = malloc((size_t)(cnt ? cnt : 1) * sizeof(int32_t));
    if (!out) return NULL;
    flatten_ints(arr, out, &k);
    if (n) *n = cnt;
    return out;
}

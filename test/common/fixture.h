/* fixture.h: reads the JSON fixtures written by the test/ref generators.
 * A tensor is {"shape": [..], "data": [..]} with float32 values printed exactly (%.9g). */
#pragma once
#include <jansson.h>
#include <stdint.h>
#include "base/error.h"

/* Loads a JSON file (path relative to the source root); NULL with a message in err on failure. */
json_t *qb_fixture_load(const char *rel_path, qb_err *err);
/* Decodes a tensor object into a malloc'd float array; shape gets up to 4 dims. NULL when malformed. */
float *qb_fixture_tensor(json_t *t, int *ndim, int64_t *shape, int64_t *n);
/* Decodes an integer array (flat, any nesting depth is flattened) into a malloc'd int32 array. */
int32_t *qb_fixture_ints(json_t *arr, int64_t *n);

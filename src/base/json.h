/* json.h: JSON documents from checkpoints with jansson: every integer accepted (those beyond 64 bits are read as
 * reals), integers read back exactly or refused, and reals written as the shortest decimals that round-trip. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

/* Parses len bytes of JSON; `what` names the source in errors ("what: line L column C: reason"). A document with
 * an integer beyond 64 bits is parsed again with all numbers as reals (JSON_DECODE_INT_AS_REAL). */
json_t *qb_json_loadb(const char *text, size_t len, const char *what, qb_err *err);
/* Reads and parses a JSON file as qb_json_loadb. */
json_t *qb_json_load_file(const char *path, qb_err *err);
/* The type of v for messages ("expected a string, got an integer"): "an object", "an array", "a string", "an integer",
 * "a number", "true", "false", "null" ("nothing" for NULL). */
const char *qb_json_kind(const json_t *v);
/* True for a JSON integer or a real with an integral value (1e30, 512.0). */
bool qb_json_is_integral(const json_t *v);
/* Reads an integer in [lo, hi] from v (a JSON integer, or an integral real below 2^53, where doubles are exact);
 * otherwise sets err to "what: key KEY: reason" and returns -1. */
int qb_json_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out, const char *what, const char *key, qb_err *err);
/* Turns every integral real below 2^53 under v back into an integer (a document read with all numbers as
 * reals keeps its integers when written again). */
void qb_json_integers_back(json_t *v);
/* Writes x into buf (40 bytes suffice) as Python's repr does: the fewest significant digits that read back as x,
 * fixed notation from 1e-4 to below 1e16 ("0.1", "512.0"), else "1e-12", "1.5e+30". Returns buf. */
char *qb_json_real_str(double x, char *buf, size_t cap);
/* json_dumps(root, flags) with every real as qb_json_real_str writes it (as Python's json module does), so that
 * values such as 0.1 and 1e-12 come out as written (flags must not hold JSON_REAL_PRECISION). Free the result. */
char *qb_json_dumps_shortest(const json_t *root, size_t flags);
/* Writes root to path atomically as qb_json_dumps_shortest(root, flags) plus a final newline, as Python's
 * json.dump + "\n" (transformers' save_pretrained) does. */
int qb_json_save(const json_t *root, size_t flags, const char *path, qb_err *err);

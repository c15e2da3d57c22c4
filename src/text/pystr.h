/* pystr.h: the Python str semantics that HF's scripts and the official SQuAD scripts rely on
 * (str.isspace, str.lower, the re module's \w), on code points. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Python str.isspace() for one code point (what str.split() and str.lstrip() use). */
bool qb_py_isspace(int32_t cp);
/* Python re's Unicode \w: letters, numbers and '_'. */
bool qb_py_isword(int32_t cp);
/* Python str.lower() of cps[0, n) into out (room for 2 * n); handles U+0130 and final sigma. Returns the new length. */
int64_t qb_py_lower(const int32_t *cps, int64_t n, int32_t *out);

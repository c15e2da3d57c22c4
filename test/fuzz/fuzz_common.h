/* fuzz_common.h: what the libFuzzer targets share: a scratch directory of their own (on tmpfs when there is one) and
 * writing an input there as a named file, since the readers under test take paths. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The target's scratch directory, created on first use. */
const char *fuzz_dir(void);
/* Writes n bytes as fuzz_dir()/name; returns the path (a static buffer per call slot), or NULL when writing fails. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t n);

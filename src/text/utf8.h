/* utf8.h: strict UTF-8 decoding to code points and encoding back. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

/* Decodes len bytes into *cps (grown with realloc, capacity in *cap); sets *n. Invalid UTF-8 fails with its byte offset. */
int qb_utf8_decode(const char *s, size_t len, int32_t **cps, int64_t *cap, int64_t *n, qb_err *err);
/* Checks that len bytes are valid UTF-8; returns the byte offset of the first invalid sequence, or -1. */
int64_t qb_utf8_invalid_offset(const char *s, size_t len);
/* Number of code points in valid UTF-8. */
int64_t qb_utf8_count(const char *s, size_t len);
/* Byte offset of code point index ci in valid UTF-8 (len when ci is past the end). */
size_t qb_utf8_byte_offset(const char *s, size_t len, int64_t ci);
/* Decodes one code point from s (len > 0 bytes); returns its byte length, or -1 when invalid. */
int qb_utf8_next(const char *s, size_t len, int32_t *cp);
/* Writes the UTF-8 encoding of cp to buf (4 bytes room); returns the byte count. */
int qb_utf8_encode(int32_t cp, char *buf);

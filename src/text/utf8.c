/* utf8.c: see utf8.h. */
#include "text/utf8.h"

#include <stdlib.h>
#include <utf8proc.h>

int64_t qb_utf8_invalid_offset(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { i++; continue; }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return (int64_t)i;
        i += (size_t)k;
    }
    return -1;
}

int qb_utf8_decode(const char *s, size_t len, int32_t **cps, int64_t *cap, int64_t *n, qb_err *err) {
    if ((int64_t)len + 1 > *cap) {
        int64_t want = (int64_t)len + 1;
        if (want < 2 * *cap) want = 2 * *cap;
        int32_t *nb = realloc(*cps, (size_t)want * sizeof **cps);
        if (!nb) return qb_errorf(err, "out of memory decoding %zu bytes of UTF-8", len);
        *cps = nb;
        *cap = want;
    }
    const uint8_t *p = (const uint8_t *)s;
    int32_t *out = *cps;
    int64_t m = 0;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { out[m++] = p[i++]; continue; }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return qb_errorf(err, "invalid UTF-8 at byte offset %zu", i);
        out[m++] = cp;
        i += (size_t)k;
    }
    *n = m;
    return 0;
}

int64_t qb_utf8_count(const char *s, size_t len) {
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

size_t qb_utf8_byte_offset(const char *s, size_t len, int64_t ci) {
    int64_t c = -1;
    for (size_t i = 0; i < len; i++) {
        if (((uint8_t)s[i] & 0xC0) != 0x80 && ++c == ci) return i;
    }
    return len;
}

int qb_utf8_encode(int32_t cp, char *buf) {
    return (int)utf8proc_encode_char(cp, (utf8proc_uint8_t *)buf);
}

int qb_utf8_next(const char *s, size_t len, int32_t *cp) {
    utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s, (utf8proc_ssize_t)len, cp);
    return k > 0 ? (int)k : -1;
}

/* pystr.c: see pystr.h. */
#include "text/pystr.h"

#include <utf8proc.h>

bool qb_py_isspace(int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool qb_py_isword(int32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

static bool is_cased(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
           utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp;
}

static bool is_case_ignorable(int32_t cp) {
    switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xA8: case 0xAD: case 0xAF: case 0xB4: case 0xB7:
    case 0xB8: case 0x387: case 0x5F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13:
    case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
    default:
        break;
    }
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

/* Final_Sigma: cased (case-ignorable)* SIGMA, not followed by (case-ignorable)* cased. */
static bool final_sigma(const int32_t *cps, int64_t n, int64_t i) {
    int64_t j = i - 1;
    while (j >= 0 && is_case_ignorable(cps[j])) j--;
    if (j < 0 || !is_cased(cps[j])) return false;
    j = i + 1;
    while (j < n && is_case_ignorable(cps[j])) j++;
    return j == n || !is_cased(cps[j]);
}

int64_t qb_py_lower(const int32_t *cps, int64_t n, int32_t *out) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t cp = cps[i];
        if (cp < 0x80) out[m++] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        else if (cp == 0x130) { out[m++] = 'i'; out[m++] = 0x307; }
        else if (cp == 0x3A3) out[m++] = final_sigma(cps, n, i) ? 0x3C2 : 0x3C3;
        else out[m++] = utf8proc_tolower(cp);
    }
    return m;
}

/* bert_normalizer.c: see bert_normalizer.h. */
#include "text/bert_normalizer.h"

#include <stdlib.h>
#include <utf8proc.h>

bool qb_bert_is_whitespace(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return true;
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    if (cp < 0x20 || cp == 0x7F) return true;
    if (cp < 0x80) return false;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
}

bool qb_bert_is_punctuation(int32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool qb_bert_is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static int reserve(qb_norm_buf *b, int64_t extra, qb_err *err) {
    if (b->n + extra <= b->cap) return 0;
    int64_t cap = b->cap ? 2 * b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    int32_t *cp = realloc(b->cp, (size_t)cap * sizeof *cp);
    if (!cp) return qb_errorf(err, "out of memory normalising text");
    b->cp = cp;
    int32_t *src = realloc(b->src, (size_t)cap * sizeof *src);
    if (!src) return qb_errorf(err, "out of memory normalising text");
    b->src = src;
    b->cap = cap;
    return 0;
}

static void push(qb_norm_buf *b, int32_t cp, int32_t src) {
    b->cp[b->n] = cp;
    b->src[b->n] = src;
    b->n++;
}

/* Canonical ordering of the combining marks in out[from, n): stable by combining class, starters stay put. */
static void canonical_order(qb_norm_buf *b, int64_t from) {
    for (int64_t i = from + 1; i < b->n; i++) {
        int ci = utf8proc_get_property(b->cp[i])->combining_class;
        if (ci == 0) continue;
        int64_t j = i;
        while (j > from) {
            int cj = utf8proc_get_property(b->cp[j - 1])->combining_class;
            if (cj <= ci) break;
            int32_t t = b->cp[j];
            b->cp[j] = b->cp[j - 1];
            b->cp[j - 1] = t;
            t = b->src[j];
            b->src[j] = b->src[j - 1];
            b->src[j - 1] = t;
            j--;
        }
    }
}

static void push_lower(qb_norm_buf *b, const qb_bert_norm_opts *o, int32_t cp, int32_t src) {
    if (!o->lowercase || (cp < 0x80 && !(cp >= 'A' && cp <= 'Z'))) { push(b, cp, src); return; }
    if (cp < 0x80) { push(b, cp + 32, src); return; }
    if (cp == 0x130) { /* the one unconditional multi-code-point lower-case mapping */
        push(b, 'i', src);
        push(b, 0x307, src);
        return;
    }
    push(b, utf8proc_tolower(cp), src);
}

int qb_bert_normalize(const qb_bert_norm_opts *o, const int32_t *cps, int64_t begin, int64_t end, qb_norm_buf *out, qb_err *err) {
    if (reserve(out, end - begin, err)) return -1;
    int64_t nfd_from = out->n;
    for (int64_t i = begin; i < end; i++) {
        int32_t cp = cps[i];
        int32_t src = (int32_t)i;
        if (cp < 0x80 && cp >= 0x20 && cp != 0x7F) { /* ASCII fast path: no decomposition, no CJK */
            if (out->n + 1 > out->cap && reserve(out, 1, err)) return -1;
            push(out, o->lowercase && cp >= 'A' && cp <= 'Z' ? cp + 32 : cp, src);
            nfd_from = out->n;
            continue;
        }
        if (o->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (qb_bert_is_whitespace(cp)) cp = ' ';
        }
        if (reserve(out, 3 + 18 * 2, err)) return -1;
        if (o->handle_chinese_chars && qb_bert_is_cjk(cp)) {
            push(out, ' ', src);
            push_lower(out, o, cp, src);
            push(out, ' ', src);
            nfd_from = out->n;
            continue;
        }
        if (!o->strip_accents) { push_lower(out, o, cp, src); continue; }
        utf8proc_int32_t dec[18];
        int last_bound = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, dec, 18, UTF8PROC_DECOMPOSE, &last_bound);
        if (k < 0 || k > 18) { dec[0] = cp; k = 1; }
        int64_t start = out->n;
        for (utf8proc_ssize_t j = 0; j < k; j++) push(out, dec[j], src);
        if (utf8proc_get_property(dec[0])->combining_class == 0) nfd_from = start;
        canonical_order(out, nfd_from);
        /* drop nonspacing marks, then lower-case what is left (in this order, as BertNormalizer does) */
        int64_t w = start;
        for (int64_t r = start; r < out->n; r++) {
            if (utf8proc_category(out->cp[r]) == UTF8PROC_CATEGORY_MN) continue;
            out->cp[w] = out->cp[r];
            out->src[w] = out->src[r];
            w++;
        }
        out->n = w;
        if (o->lowercase) {
            int64_t n0 = out->n;
            int has130 = 0;
            for (int64_t r = start; r < n0; r++) has130 |= out->cp[r] == 0x130;
            if (!has130) {
                for (int64_t r = start; r < n0; r++) out->cp[r] = utf8proc_tolower(out->cp[r]);
            } else {
                int32_t tmp_cp[18], tmp_src[18];
                int64_t m = n0 - start;
                for (int64_t r = 0; r < m; r++) { tmp_cp[r] = out->cp[start + r]; tmp_src[r] = out->src[start + r]; }
                out->n = start;
                for (int64_t r = 0; r < m; r++) push_lower(out, o, tmp_cp[r], tmp_src[r]);
            }
        }
    }
    return 0;
}

void qb_norm_buf_free(qb_norm_buf *b) {
    free(b->cp);
    free(b->src);
    b->cp = b->src = NULL;
    b->n = b->cap = 0;
}

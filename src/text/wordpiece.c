/* wordpiece.c: see wordpiece.h. */
#include "text/wordpiece.h"

#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

int qb_tokens_push(qb_tokens *out, int32_t id, int32_t start, int32_t end, qb_err *err) {
    if (out->n == out->cap) {
        int64_t cap = out->cap ? 2 * out->cap : 256;
        int32_t *a = realloc(out->ids, (size_t)cap * sizeof *a);
        if (!a) return qb_errorf(err, "out of memory for tokens");
        out->ids = a;
        a = realloc(out->start, (size_t)cap * sizeof *a);
        if (!a) return qb_errorf(err, "out of memory for tokens");
        out->start = a;
        a = realloc(out->end, (size_t)cap * sizeof *a);
        if (!a) return qb_errorf(err, "out of memory for tokens");
        out->end = a;
        out->cap = cap;
    }
    out->ids[out->n] = id;
    out->start[out->n] = start;
    out->end[out->n] = end;
    out->n++;
    return 0;
}

/* WordPiece of one word: normalised code points [a, b). */
static int word_pieces(const qb_wordpiece *wp, const qb_norm_buf *norm, int64_t a, int64_t b, qb_tokens *out, qb_err *err) {
    int64_t m = b - a;
    const int32_t *src = norm->src;
    if (m > wp->max_input_chars_per_word) return qb_tokens_push(out, wp->unk_id, src[a], src[b - 1] + 1, err);
    size_t need = wp->prefix_len + 4 * (size_t)m + 1;
    if (need > out->word_cap) {
        size_t cap = need < 256 ? 256 : 2 * need;
        char *w = realloc(out->word, cap);
        if (!w) return qb_errorf(err, "out of memory for a word");
        out->word = w;
        int32_t *p = realloc(out->word_pos, cap * sizeof *p);
        if (!p) return qb_errorf(err, "out of memory for a word");
        out->word_pos = p;
        out->word_cap = cap;
    }
    size_t P = wp->prefix_len;
    char *buf = out->word;     /* P bytes of room for the prefix, then the word's UTF-8 */
    int32_t *pos = out->word_pos; /* pos[k]: byte offset of char k after the room */
    int32_t nb = 0;
    for (int64_t k = 0; k < m; k++) {
        pos[k] = nb;
        int32_t cp = norm->cp[a + k];
        if (cp < 0x80) buf[P + (size_t)nb++] = (char)cp;
        else nb += qb_utf8_encode(cp, buf + P + nb);
    }
    pos[m] = nb;
    int64_t first_piece = out->n;
    int64_t start = 0;
    size_t maxb = wp->vocab->max_token_bytes;
    while (start < m) {
        int64_t end = m;
        int32_t found = -1;
        const char *s;
        size_t prefix = 0;
        if (start > 0) {
            memcpy(buf + pos[start], wp->prefix, P); /* overwrites bytes of chars already consumed */
            s = buf + pos[start];
            prefix = P;
        } else {
            s = buf + P;
        }
        while (end > start && (size_t)(pos[end] - pos[start]) + prefix > maxb) end--;
        for (; end > start; end--) {
            found = qb_vocab_find(wp->vocab, s, (size_t)(pos[end] - pos[start]) + prefix);
            if (found >= 0) break;
        }
        if (found < 0) {
            out->n = first_piece;
            return qb_tokens_push(out, wp->unk_id, src[a], src[b - 1] + 1, err);
        }
        if (qb_tokens_push(out, found, src[a + start], src[a + end - 1] + 1, err)) return -1;
        start = end;
    }
    return 0;
}

int qb_wordpiece_tokenize(const qb_wordpiece *wp, const qb_norm_buf *norm, qb_tokens *out, qb_err *err) {
    int64_t n = norm->n, i = 0;
    const int32_t *cp = norm->cp;
    while (i < n) {
        int32_t c = cp[i];
        if (qb_bert_is_whitespace(c)) { i++; continue; }
        if (qb_bert_is_punctuation(c)) {
            if (word_pieces(wp, norm, i, i + 1, out, err)) return -1;
            i++;
            continue;
        }
        int64_t j = i + 1;
        while (j < n && !qb_bert_is_whitespace(cp[j]) && !qb_bert_is_punctuation(cp[j])) j++;
        if (word_pieces(wp, norm, i, j, out, err)) return -1;
        i = j;
    }
    return 0;
}

void qb_tokens_free(qb_tokens *t) {
    free(t->ids);
    free(t->start);
    free(t->end);
    free(t->cps);
    free(t->word);
    free(t->word_pos);
    qb_norm_buf_free(&t->norm);
    memset(t, 0, sizeof *t);
}

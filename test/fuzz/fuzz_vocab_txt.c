/* fuzz_vocab_txt.c: loading a tokenizer from an arbitrary vocab.txt (first byte: lowercase or not); a vocabulary that
 * loads must tokenize a mixed-script text into ids inside it. */
#include <string.h>
#include "fuzz_common.h"
#include "text/tokenizer.h"

static const char sample[] = "Hello [MASK] wörld, naïve café: 東京 x\xCC\x81 [SEP] the end. ##ab unaffable";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *path = fuzz_write("vocab.txt", data + 1, size - 1);
    qb_tokenizer t;
    qb_err err = {0};
    if (!path || qb_tokenizer_from_vocab(&t, path, data[0] & 1, &err)) return 0;
    qb_tokens toks = {0};
    qb_tokenize(&t, sample, strlen(sample), &toks, &err);
    for (int64_t i = 0; i < toks.n; i++)
        if (toks.ids[i] < 0 || toks.ids[i] >= t.vocab.n) __builtin_trap();
    qb_tokens_free(&toks);
    qb_tokenizer_free(&t);
    return 0;
}

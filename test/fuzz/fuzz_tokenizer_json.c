/* fuzz_tokenizer_json.c: loading a tokenizer from an arbitrary tokenizer.json (with, when the first byte is odd, a
 * fixed tokenizer_config.json beside it); a tokenizer that loads must tokenize a mixed-script text. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz_common.h"
#include "text/tokenizer.h"

static const char sample[] = "Hello [MASK] wörld, naïve café: 東京 x\xCC\x81 [SEP] the end.";
static const char config[] = "{\"do_lower_case\": false, \"unk_token\": \"[UNK]\", \"cls_token\": \"[CLS]\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tok", fuzz_dir());
    mkdir(dir, 0755);
    char name[64];
    snprintf(name, sizeof name, "tok/tokenizer_config.json");
    if (data[0] & 1) fuzz_write(name, (const uint8_t *)config, sizeof config - 1);
    else {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", fuzz_dir(), name);
        unlink(p);
    }
    if (!fuzz_write("tok/tokenizer.json", data + 1, size - 1)) return 0;
    qb_tokenizer t;
    qb_err err = {0};
    if (qb_tokenizer_load(&t, dir, &err)) return 0;
    qb_tokens toks = {0};
    qb_tokenize(&t, sample, strlen(sample), &toks, &err);
    for (int64_t i = 0; i < toks.n; i++)
        if (toks.ids[i] < 0) __builtin_trap();
    qb_tokens_free(&toks);
    qb_tokenizer_free(&t);
    return 0;
}

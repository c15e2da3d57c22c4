/* test_tokenizer.c: tokenizer behaviour that needs no SQuAD data: WordPiece matching, special tokens,
 * errors for invalid UTF-8 and bad vocabulary/config files, pair windows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "check.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"

static char tmpdir[] = "/tmp/qb_test_tokenizer_XXXXXX";

static const char *tmp_write(const char *name, const char *content) {
    static char path[8][4096];
    static int slot = 0;
    char *p = path[slot++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    qb_err err = {0};
    if (qb_write_file_atomic(p, content, strlen(content), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return p;
}

static const char *TINY = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\n##a\n##ff\nthe\n,\n.\nx\n##x\nhello\n";

static void numbers(qb_check *c);

static void check_tokens(qb_check *c, const qb_tokenizer *t, const char *text, int n, const int32_t *ids,
                         const int32_t *offs) {
    qb_tokens toks = {0};
    qb_err err = {0};
    int rc = qb_tokenize(t, text, strlen(text), &toks, &err);
    bool ok = rc == 0 && toks.n == n;
    for (int i = 0; ok && i < n; i++)
        ok = toks.ids[i] == ids[i] && toks.start[i] == offs[2 * i] && toks.end[i] == offs[2 * i + 1];
    CHECK(c, ok, "tokens of \"%s\" (rc %d, %ld tokens, want %d) %s", text, rc, (long)toks.n, n, err.msg);
    qb_tokens_free(&toks);
}

static void wordpiece(qb_check *c) {
    qb_tokenizer t;
    qb_err err = {0};
    const char *v = tmp_write("vocab.txt", TINY);
    if (!CHECK(c, qb_tokenizer_from_vocab(&t, v, true, &err) == 0, "%s", err.msg)) return;
    check_tokens(c, &t, "UnAffable", 3, (int32_t[]){5, 6, 7}, (int32_t[]){0, 2, 2, 5, 5, 9});
    check_tokens(c, &t, "unaffa, the.", 6, (int32_t[]){5, 6, 8, 11, 10, 12},
                 (int32_t[]){0, 2, 2, 5, 5, 6, 6, 7, 8, 11, 11, 12});
    check_tokens(c, &t, "unknownword hello", 2, (int32_t[]){1, 15}, (int32_t[]){0, 11, 12, 17});
    check_tokens(c, &t, "hé[MASK]llo", 3, (int32_t[]){1, 4, 1}, (int32_t[]){0, 2, 2, 8, 8, 11});
    char longw[128];
    memset(longw, 'x', 101);
    longw[101] = '\0';
    check_tokens(c, &t, longw, 1, (int32_t[]){1}, (int32_t[]){0, 101});
    longw[100] = '\0';
    qb_tokens toks = {0};
    CHECK(c, qb_tokenize(&t, longw, 100, &toks, &err) == 0 && toks.n == 100 && toks.ids[0] == 13 && toks.ids[99] == 14,
          "a 100-character word is split into WordPiece tokens");
    const char *bad[] = {"ab\xC3(", "ok \xC0\xAF", "x\xED\xA0\x80", "abc\xF4\x90\x80\x80", "\xE2\x82"};
    const char *want[] = {"byte offset 2", "byte offset 3", "byte offset 1", "byte offset 3", "byte offset 0"};
    for (int i = 0; i < 5; i++) {
        qb_err e = {0};
        int rc = qb_tokenize(&t, bad[i], strlen(bad[i]), &toks, &e);
        CHECK(c, rc != 0 && strstr(e.msg, want[i]) != NULL, "invalid UTF-8 case %d: got \"%s\", want \"%s\"", i, e.msg,
              want[i]);
    }
    qb_tokens_free(&toks);
    qb_tokenizer_free(&t);
}

static void bad_files(qb_check *c) {
    qb_tokenizer t;
    qb_err err = {0};
    const char *v = tmp_write("bad_vocab.txt", "[PAD]\n[UNK]\nab\xFF\n");
    CHECK(c, qb_tokenizer_from_vocab(&t, v, true, &err) != 0 && strstr(err.msg, "bad_vocab.txt: line 3") &&
                 strstr(err.msg, "byte offset 14"),
          "invalid UTF-8 in a vocabulary names file, line and offset: %s", err.msg);
    qb_err_clear(&err);
    v = tmp_write("nounk.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\nx\n");
    CHECK(c, qb_tokenizer_from_vocab(&t, v, true, &err) != 0 && strstr(err.msg, "nounk.txt") && strstr(err.msg, "[UNK]"),
          "a vocabulary without [UNK] is an error: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_tokenizer_from_vocab(&t, "/nonexistent/vocab.txt", true, &err) != 0 && strstr(err.msg, "/nonexistent/vocab.txt"),
          "a missing vocabulary names its path: %s", err.msg);
    qb_err_clear(&err);
    tmp_write("tokenizer.json", "{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}");
    CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, "tokenizer.json: key normalizer.type"),
          "an unsupported normalizer names file and key: %s", err.msg);
    qb_err_clear(&err);
    tmp_write("tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": 1}, \"pre_tokenizer\": "
                                "{\"type\": \"BertPreTokenizer\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
    CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, "key normalizer.lowercase"),
          "a mistyped option names its key: %s", err.msg);
    qb_err_clear(&err);
    tmp_write("tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
                                "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"[UNK]\": 16777215}}}");
    CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, "key model.vocab: id 16777215 with 2 tokens"),
          "sparse vocabulary ids are refused (tables would follow the largest id): %s", err.msg);
    qb_err_clear(&err);
    tmp_write("tokenizer.json", "{\"normalizer\": ");
    CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, "tokenizer.json: line 1"),
          "malformed JSON names file and line: %s", err.msg);
    qb_err_clear(&err);
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    unlink(p);
    tmp_write("vocab.txt", TINY);
    tmp_write("tokenizer_config.json", "{\"do_lower_case\": false}");
    if (CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) == 0, "%s", err.msg)) {
        CHECK(c, !t.norm.lowercase && !t.norm.strip_accents, "do_lower_case false keeps case and accents");
        check_tokens(c, &t, "UnAffable hello", 2, (int32_t[]){1, 15}, (int32_t[]){0, 9, 10, 15});
        qb_tokenizer_free(&t);
    }
    qb_err_clear(&err);
    tmp_write("tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, "tokenizer_config.json: key do_lower_case"),
          "a mistyped do_lower_case names file and key: %s", err.msg);
    qb_err_clear(&err);
    numbers(c);
}

/* Numbers of any size load (integers beyond 64 bits too); the ones used are exact integers in range. */
static void numbers(qb_check *c) {
    qb_tokenizer t;
    qb_err err = {0};
    struct { const char *text; int64_t max_len; } ok[] = {
        {"{\"model_max_length\": 1000000000000000019884624838656, \"x\": -123456789012345678901234567890}", 0},
        {"{\"model_max_length\": 1e30}", 0},
        {"{\"model_max_length\": 512}", 512},
        {"{\"model_max_length\": 384.0, \"huge\": [99999999999999999999999]}", 384},
        {"{\"model_max_length\": null}", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tmp_write("tokenizer_config.json", ok[i].text);
        if (CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) == 0, "%s: %s", ok[i].text, err.msg)) {
            CHECK(c, t.model_max_length == ok[i].max_len, "%s: model_max_length %lld, want %lld", ok[i].text,
                  (long long)t.model_max_length, (long long)ok[i].max_len);
            qb_tokenizer_free(&t);
        }
        qb_err_clear(&err);
    }
    struct { const char *file, *text, *want; } bad[] = {
        {"tokenizer_config.json", "{\"model_max_length\": 1.5}", "tokenizer_config.json: key model_max_length: 1.5 is not an integer"},
        {"tokenizer_config.json", "{\"model_max_length\": 0}", "tokenizer_config.json: key model_max_length: 0 is outside [1, 2147483647]"},
        {"tokenizer_config.json", "{\"model_max_length\": \"512\"}", "key model_max_length: expected an integer"},
        {"tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
                           "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 1e30}}, \"n\": 1e999999}",
         "tokenizer.json: line 1"},
        {"tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
                           "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 1000000000000000019884624838656}}}",
         "tokenizer.json: key model.vocab.\"[UNK]\": 1e+30 is outside [0, 16777216]"},
        {"tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
                           "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0.5}}}",
         "tokenizer.json: key model.vocab.\"[UNK]\": 0.5 is not an integer"},
        {"tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
                           "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"added_tokens\": [{\"content\": \"[X]\", \"id\": -1}]}",
         "tokenizer.json: key added_tokens[0].id: -1 is outside [0, 16777216]"},
    };
    char p[4096];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tmp_write("tokenizer_config.json", "{}");
        tmp_write(bad[i].file, bad[i].text);
        CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) != 0 && strstr(err.msg, bad[i].want), "%s: got \"%s\", want \"%s\"", bad[i].text,
              err.msg, bad[i].want);
        qb_err_clear(&err);
    }
    /* tokenizer.json with a limit beyond 64 bits: no limit on word length; do_lower_case from tokenizer_config.json */
    tmp_write("tokenizer_config.json", "{\"do_lower_case\": false}");
    tmp_write("tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true}, \"pre_tokenizer\": "
                                "{\"type\": \"BertPreTokenizer\"}, \"model\": {\"type\": \"WordPiece\", \"max_input_chars_per_word\": "
                                "18446744073709551616, \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, "
                                "\"[MASK]\": 4, \"x\": 5, \"##x\": 6}}}");
    if (CHECK(c, qb_tokenizer_load(&t, tmpdir, &err) == 0, "%s", err.msg)) {
        CHECK(c, t.wp.max_input_chars_per_word == 2147483647 && !t.norm.lowercase,
              "max_input_chars_per_word 2^64 is no limit (%d); do_lower_case false rules", t.wp.max_input_chars_per_word);
        qb_tokenizer_free(&t);
    }
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", tmpdir);
    unlink(p);
}

static void windows(qb_check *c) {
    qb_tokenizer t;
    qb_err err = {0};
    if (!CHECK(c, qb_tokenizer_from_vocab(&t, tmp_write("vocab.txt", TINY), true, &err) == 0, "%s", err.msg)) return;
    qb_tokens a = {0}, b = {0};
    for (int i = 0; i < 5; i++) qb_tokens_push(&a, 10, i, i + 1, &err);
    for (int i = 0; i < 100; i++) qb_tokens_push(&b, 13, 2 * i, 2 * i + 1, &err);
    qb_pair_windows w;
    CHECK(c, qb_pair_plan(5, 100, 32, 8, &w, &err) == 0 && w.room == 24 && w.step == 16 && w.count == 6,
          "windows: room %ld step %ld count %ld", (long)w.room, (long)w.step, (long)w.count);
    int32_t ids[32], types[32], mask[32], offs[64];
    int8_t seq[32];
    int used = qb_pair_fill(&t, &a, 5, &b, &w, 5, 32, ids, types, mask, offs, seq);
    /* last window: b[80, 100) -> 1 + 5 + 1 + 20 + 1 = 28 tokens, then 4 pads */
    CHECK(c, used == 28 && ids[0] == t.cls_id && ids[6] == t.sep_id && ids[27] == t.sep_id && ids[28] == t.pad_id &&
                 offs[2 * 7] == 160 && types[7] == 1 && types[27] == 1 && types[28] == 0 && mask[27] == 1 &&
                 mask[28] == 0 && seq[6] == -1 && seq[7] == 1 && seq[1] == 0,
          "pair layout of the last window");
    CHECK(c, qb_pair_plan(5, 100, 32, 24, &w, &err) != 0 && strstr(err.msg, "stride 24"), "stride >= room fails: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_pair_plan(30, 100, 32, 0, &w, &err) != 0, "a first sequence filling max_length fails");
    CHECK(c, qb_pair_plan(5, 24, 32, 8, &w, &err) == 0 && w.count == 1, "a second sequence that fits is one window");
    qb_tokens_free(&a);
    qb_tokens_free(&b);
    qb_tokenizer_free(&t);
}

int main(void) {
    qb_check c = {0};
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    wordpiece(&c);
    bad_files(&c);
    windows(&c);
    const char *names[] = {"vocab.txt", "bad_vocab.txt", "nounk.txt", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 5; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return qb_check_finish(&c, "text tokenizer");
}

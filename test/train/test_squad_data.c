/* test_squad_data.c: the SQuAD reader on hand-made files: character offsets, v2.0 fields, and bad data reported by
 * question id (stop) or counted (skip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "check.h"
#include "train/squad_data.h"

static char tmpdir[] = "/tmp/qb_test_squad_data_XXXXXX";

static const char *write_tmp(const char *name, const char *content) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    qb_err err = {0};
    if (qb_write_file_atomic(path, content, strlen(content), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return path;
}

static const char *GOOD =
    "{\"version\": \"1.1\", \"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"\\u00dcn\\u00efc\\u00f6d\\u00e9 text here\","
    " \"qas\": [{\"answers\": [{\"answer_start\": 8, \"text\": \"text\"}, {\"answer_start\": 0, \"text\": \"\\u00dcn\"}],"
    " \"question\": \"  What?\", \"id\": \"q1\"}]}]}]}";

static const char *BAD =
    "{\"version\": \"2.0\", \"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"abc def ghi\", \"qas\": ["
    "{\"answers\": [{\"answer_start\": 4, \"text\": \"def\"}], \"question\": \"ok?\", \"id\": \"good1\"},"
    "{\"answers\": [{\"answer_start\": 4, \"text\": \"def\"}], \"id\": \"noquestion\"},"
    "{\"answers\": [{\"answer_start\": 9, \"text\": \"ghij\"}], \"question\": \"q\", \"id\": \"outside\"},"
    "{\"answers\": [{\"answer_start\": 0, \"text\": \"def\"}], \"question\": \"q\", \"id\": \"misplaced\"},"
    "{\"answers\": [], \"plausible_answers\": [{\"answer_start\": 8, \"text\": \"ghi\"}], \"is_impossible\": true,"
    " \"question\": \"q\", \"id\": \"impossible\"},"
    "{\"answers\": [{\"text\": \"abc\"}], \"question\": \"q\", \"id\": \"nostart\"}]}]}]}";

int main(void) {
    qb_check c = {0};
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    qb_err err = {0};
    qb_squad_set s;
    if (CHECK(&c, qb_squad_read(write_tmp("good.json", GOOD), false, &s, &err) == 0, "%s", err.msg)) {
        CHECK(&c, s.n == 1 && s.n_contexts == 1 && s.ex[0].n_answers == 2 && s.ex[0].answers[0].start == 8 &&
                      s.ex[0].answers[0].len == 4 && strcmp(s.ex[0].question, "  What?") == 0 && strcmp(s.version, "1.1") == 0,
              "answer_start counts characters, not bytes");
        qb_squad_free(&s);
    }
    const char *bad = write_tmp("bad.json", BAD);
    CHECK(&c, qb_squad_read(bad, false, &s, &err) != 0 && strstr(err.msg, "bad.json: question id noquestion: missing key question"),
          "stop mode names file and question id: %s", err.msg);
    qb_err_clear(&err);
    if (CHECK(&c, qb_squad_read(bad, true, &s, &err) == 0, "%s", err.msg)) {
        CHECK(&c, s.n == 2 && s.n_skipped == 4, "skip mode keeps 2 and counts 4 bad (kept %ld, skipped %ld)", (long)s.n,
              (long)s.n_skipped);
        CHECK(&c, strstr(s.skip_msgs[1], "question id outside: answers[0]: answer_start 9 outside the context (11 characters)") != NULL,
              "outside: %s", s.skip_msgs[1]);
        CHECK(&c, strstr(s.skip_msgs[2], "question id misplaced: answers[0]: answer text \"def\" is not at answer_start 0") != NULL,
              "misplaced: %s", s.skip_msgs[2]);
        CHECK(&c, strstr(s.skip_msgs[3], "question id nostart: answers[0]: missing key answer_start") != NULL, "nostart: %s",
              s.skip_msgs[3]);
        CHECK(&c, s.n == 2 && s.ex[1].is_impossible && s.ex[1].n_answers == 0 && s.ex[1].n_plausible == 1 &&
                      s.ex[1].plausible[0].start == 8,
              "v2.0 is_impossible and plausible_answers");
        qb_squad_free(&s);
    }
    CHECK(&c, qb_squad_read(write_tmp("utf8.json", "{\"data\": [\"ab\xC3\"]}"), false, &s, &err) != 0 &&
                  strstr(err.msg, "utf8.json: invalid UTF-8 at byte offset 13"),
          "invalid UTF-8 gives its byte offset: %s", err.msg);
    qb_err_clear(&err);
    CHECK(&c, qb_squad_read(write_tmp("trunc.json", "{\"data\": [{\"paragraphs\": ["), false, &s, &err) != 0 &&
                  strstr(err.msg, "trunc.json: line 1"),
          "malformed JSON names file and position: %s", err.msg);
    qb_err_clear(&err);
    CHECK(&c, qb_squad_read(write_tmp("nodata.json", "{\"version\": \"1.1\"}"), false, &s, &err) != 0 &&
                  strstr(err.msg, "missing key data"),
          "missing data: %s", err.msg);
    qb_err_clear(&err);

    /* streaming: a file larger than the reader's 1 MiB chunks, with a 3-byte character across the first boundary, a
     * later malformed token reported at its line and offset, and invalid UTF-8 past the first chunk */
    enum { BIG = (1 << 20) + 4096 };
    char *big = malloc(BIG + 256);
    const char *head = "\"version\": \"1.1\", \"data\": [{\"title\": \"";
    size_t k = 0;
    big[k++] = '{';
    for (int line = 0; line < 10000; line++) big[k++] = '\n';  /* 10,000 blank lines between tokens */
    memcpy(big + k, head, strlen(head));
    k += strlen(head);
    while (k < (1 << 20) - 1) big[k++] = 'x';  /* a long title */
    memcpy(big + k, "\xE2\x82\xAC", 3);                              /* U+20AC spans bytes 1048575..1048577 */
    k += 3;
    const char *tail = "\", \"paragraphs\": [{\"context\": \"caf\u00e9 au lait\", \"qas\": [{\"answers\": [{\"answer_start\": 5,"
                       " \"text\": \"au\"}], \"question\": \"q\", \"id\": \"big1\"}]}]}]}";
    memcpy(big + k, tail, strlen(tail) + 1);
    if (CHECK(&c, qb_squad_read(write_tmp("big.json", big), false, &s, &err) == 0, "big file: %s", err.msg)) {
        CHECK(&c, s.n == 1 && strcmp(s.ex[0].id, "big1") == 0 && s.ex[0].answers[0].start == 5 && strcmp(s.version, "1.1") == 0,
              "a file read in several chunks gives its example");
        qb_squad_free(&s);
    }
    size_t at = k + 1;  /* the comma after the title: break the JSON there */
    big[at] = '@';
    CHECK(&c, qb_squad_read(write_tmp("bigbad.json", big), false, &s, &err) != 0 && strstr(err.msg, "bigbad.json: line 10001 column "),
          "malformed JSON past the first chunk: %s", err.msg);
    qb_err_clear(&err);
    big[at] = '\xFF';
    char want[64];
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu", at);
    CHECK(&c, qb_squad_read(write_tmp("bigutf8.json", big), false, &s, &err) != 0 && strstr(err.msg, want),
          "invalid UTF-8 past the first chunk (%s): %s", want, err.msg);
    free(big);

    /* duplicate ids (skip mode keeps the first), an answer_start that would overflow, wrong JSON types */
    const char *dup = write_tmp("dup.json",
        "{\"version\": \"1.1\", \"data\": [{\"paragraphs\": [{\"context\": \"abc def\", \"qas\": ["
        "{\"answers\": [{\"answer_start\": 4, \"text\": \"def\"}], \"question\": \"a?\", \"id\": \"x\"},"
        "{\"answers\": [{\"answer_start\": 9223372036854775807, \"text\": \"def\"}], \"question\": \"b?\", \"id\": \"big\"},"
        "{\"answers\": [{\"answer_start\": 0, \"text\": \"abc\"}], \"question\": [1], \"id\": \"arr\"},"
        "{\"answers\": [{\"answer_start\": 0, \"text\": \"abc\"}], \"question\": \"c?\", \"id\": \"x\"}]}]}]}");
    qb_err_clear(&err);
    CHECK(&c, qb_squad_read(dup, false, &s, &err) != 0 && strstr(err.msg, "question id big: answers[0]: answer_start 9223372036854775807 outside the context (7 characters)"),
          "answer_start 2^63-1 is outside the context: %s", err.msg);
    qb_err_clear(&err);
    if (CHECK(&c, qb_squad_read(dup, true, &s, &err) == 0, "%s", err.msg)) {
        CHECK(&c, s.n == 1 && strcmp(s.ex[0].question, "a?") == 0 && s.n_skipped == 3, "first of two ids kept (%ld kept, %ld skipped)",
              (long)s.n, (long)s.n_skipped);
        CHECK(&c, strstr(s.skip_msgs[1], "question id arr: key question: expected a string, got an array") != NULL, "type: %s", s.skip_msgs[1]);
        CHECK(&c, strstr(s.skip_msgs[2], "data[0].paragraphs[0].qas[3]: question id x appears twice (first at data[0].paragraphs[0].qas[0])") != NULL,
              "duplicate: %s", s.skip_msgs[2]);
        qb_squad_free(&s);
    }

    const char *names[] = {"good.json", "bad.json", "utf8.json", "trunc.json", "nodata.json", "big.json", "bigbad.json", "bigutf8.json", "dup.json"};
    for (int i = 0; i < 9; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return qb_check_finish(&c, "squad data");
}

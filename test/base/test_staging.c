/* test_staging.c: the base layer's output safety: units staged and exchanged into place (new, replacing, updating
 * with the other entries carried over as hard links), aborts leaving the final place untouched, what killed runs
 * leave behind cleaned (and an old unit set aside restored), the output-directory lock with the owner's pid, special
 * files refused as inputs, and the path helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/dirlock.h"
#include "base/fileio.h"
#include "base/staging.h"
#include "check.h"

static char root[64];

static const char *at(const char *rel) {
    static char buf[8][512];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, sizeof buf[0], "%s/%s", root, rel);
    return out;
}

static void put(const char *rel, const char *text) {
    qb_err err = {0};
    if (qb_write_file_atomic(at(rel), text, strlen(text), &err)) printf("put %s: %s\n", rel, err.msg);
}

static bool has(const char *rel, const char *text) {
    char *data = NULL;
    size_t len = 0;
    qb_err err = {0};
    bool ok = qb_read_file(at(rel), &data, &len, &err) == 0 && strcmp(data, text) == 0;
    free(data);
    return ok;
}

static bool exists(const char *rel) {
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

static int entries(const char *rel) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", at(rel));
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static void test_units(qb_check *c) {
    qb_err err = {0};
    qb_stage s;
    /* a new unit */
    bool ok = qb_stage_begin(&s, at("out/ckpt"), &err) == 0;
    CHECK(c, ok && strstr(s.path, "/out/.ckpt.tmp-") != NULL, "staging directory beside the unit: %s %s", s.path, err.msg);
    struct stat st;
    CHECK(c, ok && stat(s.path, &st) == 0 && (st.st_mode & 0777) == 0755, "staging directory mode 0755");
    char p[4200];
    snprintf(p, sizeof p, "%s/a", s.path);
    qb_write_file_atomic(p, "new-a", 5, &err);
    CHECK(c, !exists("out/ckpt"), "nothing under the final name before commit");
    CHECK(c, ok && qb_stage_commit(&s, &err) == 0 && has("out/ckpt/a", "new-a"), "committed unit in place: %s", err.msg);
    CHECK(c, entries("out") == 1, "only the unit left in its parent (%d entries)", entries("out"));
    /* replacing it */
    ok = qb_stage_begin(&s, at("out/ckpt"), &err) == 0;
    snprintf(p, sizeof p, "%s/b", s.path);
    qb_write_file_atomic(p, "new-b", 5, &err);
    CHECK(c, has("out/ckpt/a", "new-a") && !exists("out/ckpt/b"), "old unit intact while the new one is staged");
    CHECK(c, ok && qb_stage_commit(&s, &err) == 0 && has("out/ckpt/b", "new-b") && !exists("out/ckpt/a"),
          "replacing commit: the new unit whole, nothing of the old: %s", err.msg);
    CHECK(c, entries("out") == 1, "old unit removed after the exchange (%d entries)", entries("out"));
    /* abort */
    ok = qb_stage_begin(&s, at("out/ckpt"), &err) == 0;
    snprintf(p, sizeof p, "%s/c", s.path);
    qb_write_file_atomic(p, "junk", 4, &err);
    qb_stage_abort(&s);
    CHECK(c, ok && has("out/ckpt/b", "new-b") && !exists("out/ckpt/c") && entries("out") == 1, "abort leaves the unit and nothing else");
    /* update: other entries carried over as hard links, replaced names dropped */
    put("out/model", "old-model");
    put("out/optimizer", "old-optimizer");
    put("out/metrics", "metrics");
    const char *replaced[] = {"model", "optimizer", NULL};
    ok = qb_stage_begin_update(&s, at("out"), replaced, &err) == 0;
    snprintf(p, sizeof p, "%s/model", s.path);
    qb_write_file_atomic(p, "new-model", 9, &err);
    struct stat a, b;
    char carried[4200];
    snprintf(carried, sizeof carried, "%s/metrics", s.path);
    CHECK(c, ok && stat(at("out/metrics"), &a) == 0 && stat(carried, &b) == 0 && a.st_ino == b.st_ino, "carried file is a hard link: %s", err.msg);
    CHECK(c, ok && qb_stage_commit(&s, &err) == 0, "update commit: %s", err.msg);
    CHECK(c, has("out/model", "new-model") && !exists("out/optimizer") && has("out/metrics", "metrics") && has("out/ckpt/b", "new-b"),
          "updated directory: new model, old optimizer dropped, metrics and the sub-unit kept");
    CHECK(c, entries("") == 1, "no staging left beside the updated directory (%d entries)", entries(""));
    CHECK(c, qb_stage_begin_update(&s, at("out/model"), replaced, &err) != 0 && strstr(err.msg, "not a directory"),
          "updating a file is refused: %s", err.msg);
}

static void test_clean(qb_check *c) {
    qb_err err = {0};
    mkdir(at("run"), 0755);
    mkdir(at("run/.checkpoint-3.tmp-123-abcDEF"), 0755);
    put("run/.checkpoint-3.tmp-123-abcDEF/config.json", "{}");
    put("run/metrics.jsonl.tmp.4567", "partial");
    put("run/keep.tmp", "not ours");
    put("run/metrics.jsonl", "ok");
    mkdir(at(".run.tmp-99-zzzzzz"), 0755);
    mkdir(at(".run2.tmp-99-zzzzzz"), 0755);
    mkdir(at("run/.checkpoint-2.old-5-qqqqqq"), 0755);  /* set aside, its unit missing: restored */
    put("run/.checkpoint-2.old-5-qqqqqq/model", "m2");
    mkdir(at("run/checkpoint-1"), 0755);
    mkdir(at("run/.checkpoint-1.old-5-rrrrrr"), 0755);  /* set aside, its unit present: removed */
    int removed = 0;
    CHECK(c, qb_stage_clean(at("run"), &removed, &err) == 0, "clean: %s", err.msg);
    CHECK(c, removed == 5, "5 stale entries handled (%d)", removed);
    CHECK(c, !exists("run/.checkpoint-3.tmp-123-abcDEF") && !exists("run/metrics.jsonl.tmp.4567") && !exists(".run.tmp-99-zzzzzz") &&
                 !exists("run/.checkpoint-1.old-5-rrrrrr"), "staging directories and temporary files removed");
    CHECK(c, has("run/checkpoint-2/model", "m2"), "a unit set aside without its replacement is restored");
    CHECK(c, exists("run/keep.tmp") && has("run/metrics.jsonl", "ok") && exists(".run2.tmp-99-zzzzzz"),
          "other files, and another directory's staging, untouched");
    CHECK(c, qb_remove_tree(at(".run2.tmp-99-zzzzzz"), &err) == 0 && qb_remove_tree(at("nothing-here"), &err) == 0, "remove_tree");
}

static void test_lock(qb_check *c) {
    qb_err err = {0};
    qb_dir_lock a, b;
    CHECK(c, qb_dir_lock_take(&a, at("new/sub/out"), &err) == 0, "lock a directory that does not exist yet: %s", err.msg);
    CHECK(c, exists("new/sub/.out.lock") && !exists("new/sub/out"), "lock file beside it, the directory itself not created");
    char want[64];
    snprintf(want, sizeof want, "is in use by another run (pid %ld)", (long)getpid());
    CHECK(c, qb_dir_lock_take(&b, at("new/sub/out/"), &err) != 0 && strstr(err.msg, want), "second lock refused with the pid: %s", err.msg);
    symlink(at("new/sub/out"), at("link"));
    qb_err_clear(&err);
    CHECK(c, qb_dir_lock_take(&b, at("link"), &err) != 0 && strstr(err.msg, want), "the same directory through a symbolic link: %s", err.msg);
    qb_dir_lock_release(&a);
    CHECK(c, !exists("new/sub/.out.lock"), "lock file removed on release");
    qb_err_clear(&err);
    CHECK(c, qb_dir_lock_take(&b, at("new/sub/out"), &err) == 0, "free again after release: %s", err.msg);
    qb_dir_lock_release(&b);
    unlink(at("link"));
}

static void test_inputs(qb_check *c) {
    qb_err err = {0};
    char *data;
    size_t len;
    mkfifo(at("fifo"), 0644);
    CHECK(c, qb_read_file(at("fifo"), &data, &len, &err) != 0 && strstr(err.msg, "not a regular file (a FIFO)"), "FIFO refused: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_read_file("/dev/zero", &data, &len, &err) != 0 && strstr(err.msg, "not a regular file (a character device)"), "device refused: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_read_file(root, &data, &len, &err) != 0 && strstr(err.msg, "a directory"), "directory refused: %s", err.msg);
    qb_err_clear(&err);
    CHECK(c, qb_open_regular(at("nope"), &err) < 0 && strstr(err.msg, "No such file"), "missing file: %s", err.msg);
    char top[4096], resolved[4096];
    qb_missing_ancestor(at("x/y/z"), top, sizeof top);
    CHECK(c, strcmp(top, at("x")) == 0, "missing ancestor of x/y/z is x: %s", top);
    qb_mkdir_p(at("x/y/z"), &err);
    qb_rmdir_empty(at("x/y/z"), top);
    CHECK(c, !exists("x"), "empty directories removed up to the first created");
    CHECK(c, qb_resolve_path(at("new/../new/q/r"), resolved, sizeof resolved, &err) == 0 && strcmp(resolved, at("new/q/r")) == 0,
          "resolve a partly missing path: %s", resolved);
}

int main(void) {
    qb_check c = {0};
    snprintf(root, sizeof root, "/tmp/qb_staging.XXXXXX");
    if (!mkdtemp(root)) return 1;
    test_units(&c);
    test_clean(&c);
    test_lock(&c);
    test_inputs(&c);
    qb_err err = {0};
    qb_remove_tree(root, &err);
    return qb_check_finish(&c, "staging");
}

/* test_tb_writer.c: TensorBoard event files. CRC32C of the standard check string; the events of a fixture written by
 * TensorBoard's own RecordWriter (test/ref/gen_tb_events.py) written again by tb_writer are the same bytes; the
 * reader decodes the fixture's records and rejects a corrupted length, a corrupted record and a truncated file, naming
 * the offset; the default logging_dir is HF's runs/<date>_<host>. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "check.h"
#include "train/tb_writer.h"

typedef struct collected {
    qb_tb_record r[64];
    int n;
} collected;

static int collect(void *user, const qb_tb_record *r) {
    collected *c = user;
    if (c->n < 64) c->r[c->n] = *r;
    c->n++;
    return 0;
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    CHECK(&c, qb_tb_crc32c("123456789", 9) == 0xE3069283u, "crc32c(\"123456789\") = %08x (want e3069283)", qb_tb_crc32c("123456789", 9));
    CHECK(&c, qb_tb_crc32c("", 0) == 0, "crc32c of nothing is 0");

    const char *fixture = qb_test_path("test/train/fixtures/tb_events.tfevents");
    char want_json[4096];
    snprintf(want_json, sizeof want_json, "%s", qb_test_path("test/train/fixtures/tb_events.json"));
    json_error_t je;
    json_t *events = json_load_file(want_json, 0, &je);
    if (!CHECK(&c, json_is_array(events) && json_array_size(events) > 2, "%s: %s", want_json, je.text)) return qb_check_finish(&c, "tb_writer");

    char tmpl[] = "/tmp/qb-tb-XXXXXX", path[300];
    if (!mkdtemp(tmpl)) return 1;
    snprintf(path, sizeof path, "%s/events.out.tfevents.test", tmpl);
    qb_tb_writer w;
    size_t n = json_array_size(events);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *e = json_array_get(events, i);
        double wall = json_number_value(json_object_get(e, "wall_time"));
        if (i == 0) rc = qb_tb_open_file(&w, path, wall, &err);
        else
            rc = qb_tb_scalar(&w, json_string_value(json_object_get(e, "tag")), json_integer_value(json_object_get(e, "step")),
                              (float)json_number_value(json_object_get(e, "value")), wall, &err);
    }
    qb_tb_close(&w);
    CHECK(&c, rc == 0, "write the fixture's events: %s", err.msg);
    char *ours = NULL, *theirs = NULL;
    size_t n_ours = 0, n_theirs = 0;
    bool read = qb_read_file(path, &ours, &n_ours, &err) == 0 && qb_read_file(fixture, &theirs, &n_theirs, &err) == 0;
    CHECK(&c, read, "read both files: %s", err.msg);
    size_t first_diff = 0;
    while (read && first_diff < n_ours && first_diff < n_theirs && ours[first_diff] == theirs[first_diff]) first_diff++;
    CHECK(&c, read && n_ours == n_theirs && memcmp(ours, theirs, n_ours) == 0,
          "our %zu bytes equal TensorBoard's RecordWriter's %zu bytes (first difference at %zu)", n_ours, n_theirs, first_diff);

    collected got = {0};
    rc = qb_tb_read(fixture, collect, &got, &err);
    CHECK(&c, rc == 0 && got.n == (int)n, "read the fixture: %d records of %zu: %s", got.n, n, err.msg);
    int same = 0;
    for (int i = 0; i < got.n && i < (int)n && i < 64; i++) {
        json_t *e = json_array_get(events, (size_t)i);
        const qb_tb_record *r = &got.r[i];
        bool ok = r->wall_time == json_number_value(json_object_get(e, "wall_time"));
        if (i == 0) ok = ok && strcmp(r->file_version, "brain.Event:2") == 0 && r->n_values == 0;
        else {
            float v = (float)json_number_value(json_object_get(e, "value"));
            ok = ok && r->n_values == 1 && strcmp(r->tag, json_string_value(json_object_get(e, "tag"))) == 0 &&
                 r->step == json_integer_value(json_object_get(e, "step")) && memcmp(&r->value, &v, sizeof v) == 0;
        }
        same += ok;
    }
    CHECK(&c, same == (int)n, "every record's wall time, step, tag and value as written (%d of %zu)", same, n);

    /* corruption: a length byte, a record byte, a truncated tail */
    struct { const char *what, *pattern; size_t at; size_t len; } bad[] = {
        {"length", "offset 0: length CRC mismatch", 0, n_theirs},
        {"record", "offset 0: data CRC mismatch", 20, n_theirs},
        {"truncated", "runs past the end", 0, n_theirs - 3},
    };
    for (int i = 0; read && i < 3; i++) {
        char *copy = malloc(n_theirs);
        memcpy(copy, theirs, n_theirs);
        if (i < 2) copy[bad[i].at] ^= 0x10;
        snprintf(path, sizeof path, "%s/bad", tmpl);
        qb_err e2 = {0};
        collected sink = {0};
        int r2 = qb_write_file_atomic(path, copy, bad[i].len, &e2) || qb_tb_read(path, collect, &sink, &e2);
        CHECK(&c, r2 != 0 && strstr(e2.msg, bad[i].pattern) && strstr(e2.msg, path), "%s: %s", bad[i].what, e2.msg);
        free(copy);
        unlink(path);
    }

    char logdir[600];
    qb_tb_default_logdir(logdir, sizeof logdir, "out", 1764600000.0);
    char host[256] = "";
    gethostname(host, sizeof host);
    const char *tail = strrchr(logdir, '_');
    CHECK(&c, strncmp(logdir, "out/runs/", 9) == 0 && strlen(logdir) > 9 + 15 && tail && strcmp(tail + 1, host) == 0,
          "default logging_dir %s is out/runs/<MonDD_HH-MM-SS>_<host>", logdir);
    qb_tb_writer w2;
    snprintf(logdir, sizeof logdir, "%s/runs/x", tmpl);
    rc = qb_tb_open(&w2, logdir, 1764600000.0, &err);
    CHECK(&c, rc == 0 && strstr(w2.path, "/runs/x/events.out.tfevents.1764600000."), "event file name %s", w2.path);
    qb_tb_close(&w2);
    unlink(w2.path);
    rmdir(logdir);
    snprintf(logdir, sizeof logdir, "%s/runs", tmpl);
    rmdir(logdir);
    snprintf(path, sizeof path, "%s/events.out.tfevents.test", tmpl);
    unlink(path);
    rmdir(tmpl);
    free(ours);
    free(theirs);
    json_decref(events);
    return qb_check_finish(&c, "tb_writer");
}

/* tb_writer.c: see tb_writer.h. */
#include "train/tb_writer.h"

#include <errno.h>
#include <stdbool.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/fileio.h"
#include "tb_event.pb-c.h"

#define TB_FILE_VERSION "brain.Event:2"
#define TB_MASK_DELTA 0xa282ead8u

uint32_t qb_tb_crc32c(const void *data, size_t n) {
    /* ISA-L's iSCSI CRC leaves the initial and final inversion to the caller */
    uint32_t crc = 0xffffffffu;
    const unsigned char *p = data;
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        crc = crc32_iscsi((unsigned char *)p, chunk, crc);
        p += chunk;
        n -= (size_t)chunk;
    }
    return crc ^ 0xffffffffu;
}

uint32_t qb_tb_masked_crc32c(const void *data, size_t n) {
    uint32_t c = qb_tb_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + TB_MASK_DELTA;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int write_event(qb_tb_writer *w, const Tensorflow__Event *ev, qb_err *err) {
    size_t n = tensorflow__event__get_packed_size(ev);
    unsigned char head[12], tail[4], stack[512];
    unsigned char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return qb_errorf(err, "%s: out of memory", w->path);
    tensorflow__event__pack(ev, buf);
    put_le(head, n, 8);
    put_le(head + 8, qb_tb_masked_crc32c(head, 8), 4);
    put_le(tail, qb_tb_masked_crc32c(buf, n), 4);
    bool ok = fwrite(head, 1, 12, w->fp) == 12 && fwrite(buf, 1, n, w->fp) == n && fwrite(tail, 1, 4, w->fp) == 4 && fflush(w->fp) == 0;
    if (buf != stack) free(buf);
    return ok ? 0 : qb_errorf(err, "%s: write failed: %s", w->path, strerror(errno));
}

int qb_tb_open_file(qb_tb_writer *w, const char *path, double wall_time, qb_err *err) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->fp = fopen(path, "wb");
    if (!w->fp) return qb_errorf(err, "%s: cannot create: %s", path, strerror(errno));
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = wall_time;
    ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
    ev.file_version = (char *)TB_FILE_VERSION;
    if (write_event(w, &ev, err)) return qb_tb_close(w), -1;
    return 0;
}

static void host_name(char *out, size_t n) {
    if (gethostname(out, n) != 0 || !out[0]) snprintf(out, n, "localhost");
    out[n - 1] = '\0';
}

int qb_tb_open(qb_tb_writer *w, const char *logdir, double wall_time, qb_err *err) {
    char host[256], path[4096];
    if (qb_mkdir_p(logdir, err)) return -1;
    host_name(host, sizeof host);
    snprintf(path, sizeof path, "%s/events.out.tfevents.%010lld.%s.%ld.0", logdir, (long long)wall_time, host, (long)getpid());
    return qb_tb_open_file(w, path, wall_time, err);
}

int qb_tb_scalar(qb_tb_writer *w, const char *tag, int64_t step, float value, double wall_time, qb_err *err) {
    if (!w->fp) return 0;
    Tensorflow__Summary__Value v = TENSORFLOW__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = value;
    Tensorflow__Summary__Value *values[1] = {&v};
    Tensorflow__Summary s = TENSORFLOW__SUMMARY__INIT;
    s.n_value = 1;
    s.value = values;
    Tensorflow__Event ev = TENSORFLOW__EVENT__INIT;
    ev.wall_time = wall_time;
    ev.step = step;
    ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
    ev.summary = &s;
    return write_event(w, &ev, err);
}

void qb_tb_close(qb_tb_writer *w) {
    if (w->fp) fclose(w->fp);
    w->fp = NULL;
}

void qb_tb_default_logdir(char *out, size_t n, const char *output_dir, double t) {
    char host[256], stamp[64];
    time_t secs = (time_t)t;
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(stamp, sizeof stamp, "%b%d_%H-%M-%S", &tm);
    host_name(host, sizeof host);
    snprintf(out, n, "%s/runs/%s_%s", output_dir, stamp, host);
}

static void to_record(const Tensorflow__Event *ev, qb_tb_record *r) {
    memset(r, 0, sizeof *r);
    r->wall_time = ev->wall_time;
    r->step = ev->step;
    if (ev->what_case == TENSORFLOW__EVENT__WHAT_FILE_VERSION && ev->file_version)
        snprintf(r->file_version, sizeof r->file_version, "%s", ev->file_version);
    if (ev->what_case == TENSORFLOW__EVENT__WHAT_SUMMARY && ev->summary) {
        r->n_values = (int)ev->summary->n_value;
        if (r->n_values > 0) {
            const Tensorflow__Summary__Value *v = ev->summary->value[0];
            snprintf(r->tag, sizeof r->tag, "%s", v->tag ? v->tag : "");
            if (v->value_case == TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE) r->value = v->simple_value;
        }
    }
}

int qb_tb_read(const char *path, int (*fn)(void *user, const qb_tb_record *r), void *user, qb_err *err) {
    char *data = NULL;
    size_t len = 0;
    if (qb_read_file(path, &data, &len, err)) return -1;
    const unsigned char *p = (const unsigned char *)data;
    size_t off = 0;
    int rc = 0;
    while (!rc && off < len) {
        if (len - off < 12) {
            rc = qb_errorf(err, "%s: offset %zu: truncated record header", path, off);
            break;
        }
        uint64_t n = get_le(p + off, 8);
        if ((uint32_t)get_le(p + off + 8, 4) != qb_tb_masked_crc32c(p + off, 8)) {
            rc = qb_errorf(err, "%s: offset %zu: length CRC mismatch", path, off);
            break;
        }
        if (n > len - off - 12 || len - off - 12 - n < 4) {
            rc = qb_errorf(err, "%s: offset %zu: record of %llu bytes runs past the end", path, off, (unsigned long long)n);
            break;
        }
        const unsigned char *rec = p + off + 12;
        if ((uint32_t)get_le(rec + n, 4) != qb_tb_masked_crc32c(rec, (size_t)n)) {
            rc = qb_errorf(err, "%s: offset %zu: data CRC mismatch", path, off);
            break;
        }
        Tensorflow__Event *ev = tensorflow__event__unpack(NULL, (size_t)n, rec);
        if (!ev) {
            rc = qb_errorf(err, "%s: offset %zu: not a tensorflow.Event", path, off);
            break;
        }
        qb_tb_record r;
        to_record(ev, &r);
        tensorflow__event__free_unpacked(ev, NULL);
        rc = fn(user, &r);
        off += 12 + (size_t)n + 4;
    }
    free(data);
    return rc;
}

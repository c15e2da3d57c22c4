/* fileio.c: see fileio.h. */
#include "base/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int qb_read_file(const char *path, char **data, size_t *len, qb_err *err) {
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return qb_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) { fclose(fp); return qb_errorf(err, "%s: cannot seek", path); }
    long n = ftell(fp);
    if (n < 0) { fclose(fp); return qb_errorf(err, "%s: cannot tell size", path); }
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(fp); return qb_errorf(err, "%s: out of memory (%ld bytes)", path, n); }
    if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        fclose(fp);
        return qb_errorf(err, "%s: short read", path);
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *len = (size_t)n;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int qb_read_file_maybe_gz(const char *path, char **data, size_t *len, qb_err *err) {
    if (!ends_with(path, ".gz")) return qb_read_file(path, data, len, err);
    *data = NULL;
    *len = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return qb_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { gzclose(gz); return qb_errorf(err, "%s: out of memory", path); }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { free(buf); gzclose(gz); return qb_errorf(err, "%s: out of memory", path); }
            buf = nb;
        }
        int got = gzread(gz, buf + n, (unsigned)(cap - n));
        if (got < 0) {
            int zerr;
            const char *m = gzerror(gz, &zerr);
            free(buf);
            gzclose(gz);
            return qb_errorf(err, "%s: gzip error at byte %zu: %s", path, n, m);
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(gz);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int qb_atomic_open(qb_atomic_file *f, const char *path, qb_err *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) + 32 >= sizeof f->tmp_path) return qb_errorf(err, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return qb_errorf(err, "%s: cannot create: %s", f->tmp_path, strerror(errno));
    return 0;
}

int qb_atomic_commit(qb_atomic_file *f, qb_err *err) {
    if (!f->fp) return qb_errorf(err, "%s: not open", f->path);
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp_path);
        return qb_errorf(err, "%s: write failed: %s", f->path, strerror(errno));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        unlink(f->tmp_path);
        return qb_errorf(err, "%s: cannot rename from %s: %s", f->path, f->tmp_path, strerror(e));
    }
    return 0;
}

void qb_atomic_abort(qb_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
}

int qb_write_file_atomic(const char *path, const void *data, size_t len, qb_err *err) {
    qb_atomic_file f;
    if (qb_atomic_open(&f, path, err)) return -1;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        qb_atomic_abort(&f);
        return qb_errorf(err, "%s: short write", path);
    }
    return qb_atomic_commit(&f, err);
}

int qb_mkdir_p(const char *path, qb_err *err) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return qb_errorf(err, "%s: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return qb_errorf(err, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return qb_errorf(err, "%s: cannot create directory: %s", buf, strerror(errno));
    return 0;
}

int qb_copy_file(const char *src, const char *dst, qb_err *err) {
    char *data = NULL;
    size_t len = 0;
    if (qb_read_file(src, &data, &len, err)) return -1;
    int rc = qb_write_file_atomic(dst, data, len, err);
    free(data);
    return rc;
}

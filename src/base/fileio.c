/* fileio.c: see fileio.h. */
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *qb_file_kind(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file";
    }
}

int qb_open_regular(const char *path, qb_err *err) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return qb_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qb_errorf(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qb_errorf(err, "%s: not a regular file (%s)", path, qb_file_kind((unsigned)st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return qb_errorf(err, "%s: fcntl: %s", path, strerror(e));
    }
    return fd;
}

int qb_read_file(const char *path, char **data, size_t *len, qb_err *err) {
    *data = NULL;
    *len = 0;
    int fd = qb_open_regular(path, err);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qb_errorf(err, "%s: cannot stat: %s", path, strerror(e));
    }
    size_t n = (size_t)st.st_size;
    char *buf = n < SIZE_MAX ? malloc(n + 1) : NULL;
    if (!buf) {
        close(fd);
        return qb_errorf(err, "%s: out of memory (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return qb_errorf(err, "%s: short read at byte %zu of %zu: %s", path, got, n, e ? strerror(e) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
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
    gzFile gz = qb_gzopen_regular(path, err);
    if (!gz) return -1;
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

gzFile qb_gzopen_regular(const char *path, qb_err *err) {
    int fd = qb_open_regular(path, err);
    if (fd < 0) return NULL;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        qb_errorf(err, "%s: cannot open: out of memory", path);
    }
    return gz;
}

int qb_fsync_dir(const char *dir, qb_err *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return qb_errorf(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : qb_errorf(err, "%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* The directory part of path ("." when there is none) into buf. */
static void dir_of(const char *path, char *buf, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, n, ".");
    else if (slash == path) snprintf(buf, n, "/");
    else snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

int qb_atomic_open(qb_atomic_file *f, const char *path, qb_err *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) + 32 >= sizeof f->tmp_path) return qb_errorf(err, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return qb_errorf(err, "%s: cannot create (as %s): %s", f->path, f->tmp_path, strerror(errno));
    return 0;
}

int qb_atomic_commit(qb_atomic_file *f, qb_err *err) {
    if (!f->fp) return qb_errorf(err, "%s: not open", f->path);
    int e = 0;  /* the first failure's errno */
    if (fflush(f->fp) != 0) e = errno ? errno : EIO;
    if (!e && ferror(f->fp)) e = EIO;
    if (!e && fsync(fileno(f->fp)) != 0) e = errno;
    if (fclose(f->fp) != 0 && !e) e = errno;
    f->fp = NULL;
    if (e) {
        unlink(f->tmp_path);
        return qb_errorf(err, "%s: write failed: %s", f->path, strerror(e));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        e = errno;
        unlink(f->tmp_path);
        return qb_errorf(err, "%s: cannot rename from %s: %s", f->path, f->tmp_path, strerror(e));
    }
    char dir[4096];
    dir_of(f->path, dir, sizeof dir);
    return qb_fsync_dir(dir, err);
}

void qb_atomic_abort(qb_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
}

int qb_write_file_atomic(const char *path, const void *data, size_t len, qb_err *err) {
    qb_atomic_file f;
    if (qb_atomic_open(&f, path, err)) return -1;
    errno = 0;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        int e = errno ? errno : EIO;
        qb_atomic_abort(&f);
        return qb_errorf(err, "%s: write failed: %s", path, strerror(e));
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

int qb_resolve_path(const char *path, char *out, size_t n, qb_err *err) {
    char head[PATH_MAX], rest[PATH_MAX] = "", real[PATH_MAX];
    if (!path[0]) return qb_errorf(err, "empty path");
    if (strlen(path) >= sizeof head) return qb_errorf(err, "%s: path too long", path);
    snprintf(head, sizeof head, "%s", path);
    for (int links = 0;;) {  /* drop trailing components until what is left exists */
        size_t len = strlen(head);
        while (len > 1 && head[len - 1] == '/') head[--len] = '\0';
        if (realpath(head, real)) break;
        if (errno != ENOENT) return qb_errorf(err, "%s: %s", head, strerror(errno));
        struct stat st;
        char target[PATH_MAX];
        ssize_t tn;
        if (lstat(head, &st) == 0 && S_ISLNK(st.st_mode) && links++ < 16 && (tn = readlink(head, target, sizeof target - 1)) > 0) {
            target[tn] = '\0';  /* a link to a directory not created yet: follow it */
            char *slash = strrchr(head, '/');
            char tmp[2 * PATH_MAX];
            if (target[0] == '/' || !slash) snprintf(tmp, sizeof tmp, "%s", target);
            else snprintf(tmp, sizeof tmp, "%.*s/%s", (int)(slash - head), head, target);
            if (strlen(tmp) >= sizeof head) return qb_errorf(err, "%s: path too long", path);
            memcpy(head, tmp, strlen(tmp) + 1);
            continue;
        }
        char *slash = strrchr(head, '/');
        const char *last = slash ? slash + 1 : head;
        if (!strcmp(last, ".") || !strcmp(last, ".."))
            return qb_errorf(err, "%s: '%s' after a missing directory", path, last);
        char tmp[2 * PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s%s%s", last, rest[0] ? "/" : "", rest);
        if (strlen(tmp) >= sizeof rest) return qb_errorf(err, "%s: path too long", path);
        memcpy(rest, tmp, strlen(tmp) + 1);
        if (!slash) {
            snprintf(head, sizeof head, ".");
        } else if (slash == head) {
            snprintf(head, sizeof head, "/");
        } else {
            *slash = '\0';
        }
    }
    int k = rest[0] ? snprintf(out, n, "%s%s%s", real, strcmp(real, "/") ? "/" : "", rest) : snprintf(out, n, "%s", real);
    if (k < 0 || (size_t)k >= n) return qb_errorf(err, "%s: path too long", path);
    return 0;
}

void qb_missing_ancestor(const char *path, char *out, size_t n) {
    out[0] = '\0';
    char buf[4096];
    if (strlen(path) >= sizeof buf) return;
    snprintf(buf, sizeof buf, "%s", path);
    struct stat st;
    for (;;) {
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
        if (lstat(buf, &st) == 0) return;
        snprintf(out, n, "%s", buf);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) return;
        *slash = '\0';
    }
}

void qb_rmdir_empty(const char *path, const char *top) {
    char buf[4096];
    if (!top[0] || strlen(path) >= sizeof buf) return;
    snprintf(buf, sizeof buf, "%s", path);
    size_t top_len = strlen(top);
    for (;;) {
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
        if (len < top_len || (rmdir(buf) != 0 && errno != ENOENT)) return;
        if (len == top_len) return;
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) return;
        *slash = '\0';
    }
}

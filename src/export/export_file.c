/* export_file.c: see export_file.h. */
#include "export/export_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int qb_export_tmp_path(const char *path, char *tmp, size_t n, qb_err *err) {
    if ((size_t)snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid()) >= n) return qb_errorf(err, "%s: path too long", path);
    return 0;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) return -1;
    errno = e;
    return rc;
}

int qb_export_commit(const char *tmp, const char *path, qb_err *err) {
    if (fsync_path(tmp, O_RDONLY) != 0) {
        int e = errno;
        unlink(tmp);
        return qb_errorf(err, "%s: cannot sync: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return qb_errorf(err, "%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0) return qb_errorf(err, "%s: cannot sync directory %s: %s", path, dir, strerror(errno));
    return 0;
}

int qb_export_write_atomic(const char *path, const void *data, size_t len, qb_err *err) {
    char tmp[4096];
    if (qb_export_tmp_path(path, tmp, sizeof tmp, err)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return qb_errorf(err, "%s: cannot create (as %s): %s", path, tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return qb_errorf(err, "%s: write failed after %zu of %zu bytes: %s", path, len - left, len, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return qb_errorf(err, "%s: write failed: %s", path, strerror(e));
    }
    return qb_export_commit(tmp, path, err);
}

/* dirlock.c: see dirlock.h. */
#include "base/dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"

#define LOCK_TRIES 100

int qb_dir_lock_take(qb_dir_lock *l, const char *dir, qb_err *err) {
    memset(l, 0, sizeof *l);
    l->fd = -1;
    char resolved[PATH_MAX], parent[PATH_MAX];
    if (qb_resolve_path(dir, resolved, sizeof resolved, err)) return -1;
    const char *slash = strrchr(resolved, '/');
    const char *name = slash ? slash + 1 : resolved;
    if (!slash || !*name) return qb_errorf(err, "'%s': cannot lock the root directory", dir);
    snprintf(parent, sizeof parent, "%.*s", slash == resolved ? 1 : (int)(slash - resolved), resolved);
    if (qb_mkdir_p(parent, err)) return -1;
    if ((size_t)snprintf(l->path, sizeof l->path, "%s%s.%s.lock", parent, strcmp(parent, "/") ? "/" : "", name) >= sizeof l->path)
        return qb_errorf(err, "'%s': path too long", dir);
    for (int tries = 0; tries < LOCK_TRIES; tries++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return qb_errorf(err, "'%s': cannot create the lock file %s: %s", dir, l->path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char pid[32] = "";
            ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
            close(fd);
            if (e != EWOULDBLOCK) return qb_errorf(err, "'%s': cannot lock %s: %s", dir, l->path, strerror(e));
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            return qb_errorf(err, "'%s' is in use by another run (pid %s); its lock is %s", dir, pid[0] ? pid : "unknown", l->path);
        }
        /* the previous owner may have removed the file between our open and flock: lock the file that is there */
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(l->path, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
            char text[32];
            int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) == len) { /* the pid is for messages only */ }
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
    return qb_errorf(err, "'%s': cannot lock %s: it keeps being replaced", dir, l->path);
}

void qb_dir_lock_release(qb_dir_lock *l) {
    if (l->fd < 0 || !l->path[0]) return;
    unlink(l->path);  /* while holding it: a process that opened it before then sees a removed file and retries */
    close(l->fd);
    l->fd = -1;
}

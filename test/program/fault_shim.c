/* fault_shim.c: an LD_PRELOAD test helper that injects file-system faults into a process: a full disk (writes fail
 * with ENOSPC once a byte budget is spent) and a SIGKILL at the k-th file-system event. Events are the calls that
 * change files: fwrite, fputc and write on descriptors > 2, fsync, fdatasync, rename(at2), link(at), symlink, mkdir,
 * unlink and rmdir. Environment:
 *   QB_FAULT_ENOSPC_AFTER=N   writes beyond N bytes in total fail with ENOSPC (a short write first, as a disk does)
 *   QB_FAULT_KILL_AT=K        SIGKILL just before the K-th event (1-based)
 *   QB_FAULT_COUNT_FILE=PATH  at exit, write the number of events seen to PATH
 *   QB_FAULT_NO_EXCHANGE=1    renameat2 with RENAME_EXCHANGE fails with EINVAL, as on file systems without it
 *   QB_FAULT_TRACE=1          print each event to stderr */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long long events, kill_at = -1, budget = -1, written;
static int trace, ready;

static void init(void) {
    if (ready) return;
    ready = 1;
    const char *k = getenv("QB_FAULT_KILL_AT"), *b = getenv("QB_FAULT_ENOSPC_AFTER"), *t = getenv("QB_FAULT_TRACE");
    if (k && *k) kill_at = atoll(k);
    if (b && *b) budget = atoll(b);
    trace = t && *t == '1';
}

static void event(const char *what, const char *arg) {
    init();
    events++;
    if (trace) fprintf(stderr, "fault_shim: event %lld %s %s\n", events, what, arg ? arg : "");
    if (kill_at > 0 && events == kill_at) raise(SIGKILL);
}

/* Bytes of a write of n that fit in the budget; sets errno to ENOSPC when not all do. */
static size_t allowed(size_t n) {
    init();
    if (budget < 0) return n;
    long long room = budget - written;
    if (room <= 0) {
        errno = ENOSPC;
        return 0;
    }
    if ((long long)n > room) {
        errno = ENOSPC;
        return (size_t)room;
    }
    return n;
}

#define REAL(ret, name, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (!real) real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

size_t fwrite(const void *p, size_t size, size_t n, FILE *fp) {
    REAL(size_t, "fwrite", const void *, size_t, size_t, FILE *);
    int fd = fileno(fp);
    if (fd <= 2 || size == 0) return real(p, size, n, fp);
    event("fwrite", NULL);
    size_t want = size * n, ok = allowed(want);
    size_t done = ok ? real(p, 1, ok, fp) : 0;
    written += (long long)done;
    if (ok < want) {
        errno = ENOSPC;
        return done / size;
    }
    return done / size;
}

int fputc(int c, FILE *fp) {
    REAL(int, "fputc", int, FILE *);
    if (fileno(fp) <= 2) return real(c, fp);
    event("fputc", NULL);
    if (allowed(1) < 1) return EOF;
    written++;
    return real(c, fp);
}

ssize_t write(int fd, const void *p, size_t n) {
    REAL(ssize_t, "write", int, const void *, size_t);
    if (fd <= 2) return real(fd, p, n);
    event("write", NULL);
    size_t ok = allowed(n);
    if (ok == 0 && n > 0) return -1;
    ssize_t done = real(fd, p, ok);
    if (done > 0) written += done;
    return done;
}

int fsync(int fd) {
    REAL(int, "fsync", int);
    event("fsync", NULL);
    return real(fd);
}

int fdatasync(int fd) {
    REAL(int, "fdatasync", int);
    event("fdatasync", NULL);
    return real(fd);
}

int rename(const char *a, const char *b) {
    REAL(int, "rename", const char *, const char *);
    event("rename", b);
    return real(a, b);
}

int renameat(int da, const char *a, int db, const char *b) {
    REAL(int, "renameat", int, const char *, int, const char *);
    event("renameat", b);
    return real(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    REAL(int, "renameat2", int, const char *, int, const char *, unsigned);
    event("renameat2", b);
    const char *no = getenv("QB_FAULT_NO_EXCHANGE");
    if (no && *no == '1' && (flags & RENAME_EXCHANGE)) {
        errno = EINVAL;
        return -1;
    }
    return real(da, a, db, b, flags);
}

int link(const char *a, const char *b) {
    REAL(int, "link", const char *, const char *);
    event("link", b);
    return real(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags) {
    REAL(int, "linkat", int, const char *, int, const char *, int);
    event("linkat", b);
    return real(da, a, db, b, flags);
}

int symlink(const char *a, const char *b) {
    REAL(int, "symlink", const char *, const char *);
    event("symlink", b);
    return real(a, b);
}

int mkdir(const char *p, mode_t m) {
    REAL(int, "mkdir", const char *, mode_t);
    event("mkdir", p);
    return real(p, m);
}

int unlink(const char *p) {
    REAL(int, "unlink", const char *);
    event("unlink", p);
    return real(p);
}

int rmdir(const char *p) {
    REAL(int, "rmdir", const char *);
    event("rmdir", p);
    return real(p);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("QB_FAULT_COUNT_FILE");
    if (!path || !*path) return;
    FILE *fp = fopen(path, "w");
    if (!fp) return;
    fprintf(fp, "%lld\n", events);
    fclose(fp);
}

/* staging.c: see staging.h. */
#include "base/staging.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"

#define TREE_DEPTH_MAX 64

static int join(char *out, size_t n, const char *dir, const char *name, qb_err *err) {
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n) return qb_errorf(err, "%s/%s: path too long", dir, name);
    return 0;
}

/* Is `entry` a staging or set-aside name ".<base>.tmp-<pid>-<XXXXXX>" / ".<base>.old-<pid>-<XXXXXX>"? Fills base. */
static bool staged_name(const char *entry, char *base, size_t n, bool *is_old) {
    size_t len = strlen(entry);
    if (len < 2 || entry[0] != '.') return false;
    const char *dash = strrchr(entry, '-');  /* before XXXXXX */
    if (!dash || strlen(dash + 1) != 6 || dash == entry) return false;
    const char *p = dash;
    while (p > entry && p[-1] >= '0' && p[-1] <= '9') p--;
    if (p == dash || p - entry < 6) return false;  /* no pid digits, or no room for ".x.tmp-" */
    const char *kind = p - 5;                       /* ".tmp-" or ".old-" */
    if (strncmp(kind, ".tmp-", 5) != 0 && strncmp(kind, ".old-", 5) != 0) return false;
    if (kind <= entry + 1) return false;
    *is_old = kind[1] == 'o';
    snprintf(base, n, "%.*s", (int)(kind - entry - 1), entry + 1);
    return true;
}

/* Is `entry` a temporary file of qb_atomic_open, "<name>.tmp.<pid>"? */
static bool atomic_tmp_name(const char *entry) {
    const char *t = strstr(entry, ".tmp.");
    if (!t || t == entry) return false;
    for (;;) {
        const char *next = strstr(t + 1, ".tmp.");
        if (!next) break;
        t = next;
    }
    const char *d = t + 5;
    if (!*d) return false;
    for (; *d; d++)
        if (*d < '0' || *d > '9') return false;
    return true;
}

/* Calls fn(child, depth + 1) for every entry of the directory dir (not . and ..), stopping at the first failure. */
static int each_child(const char *dir, int depth, int (*fn)(const char *child, int depth, qb_err *err), qb_err *err) {
    if (depth > TREE_DEPTH_MAX) return qb_errorf(err, "%s: directories nested deeper than %d", dir, TREE_DEPTH_MAX);
    DIR *d = opendir(dir);
    if (!d) return qb_errorf(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    char child[4096];
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        rc = join(child, sizeof child, dir, e->d_name, err) || fn(child, depth + 1, err) ? -1 : 0;
    }
    closedir(d);
    return rc;
}

static int remove_tree_depth(const char *path, int depth, qb_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : qb_errorf(err, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT) return qb_errorf(err, "%s: cannot remove: %s", path, strerror(errno));
        return 0;
    }
    if (each_child(path, depth, remove_tree_depth, err)) return -1;
    if (rmdir(path) != 0 && errno != ENOENT) return qb_errorf(err, "%s: cannot remove directory: %s", path, strerror(errno));
    return 0;
}

int qb_remove_tree(const char *path, qb_err *err) { return remove_tree_depth(path, 0, err); }

static bool listed(const char *name, const char *const *names) {
    for (int i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

/* Hard-links (or copies) the tree src into the existing directory dst, leaving out stale staging entries and, at the
 * top level, the names in `skip`; fsyncs every directory it fills. */
static int link_tree(const char *src, const char *dst, const char *const *skip, int depth, qb_err *err) {
    if (depth > TREE_DEPTH_MAX) return qb_errorf(err, "%s: directories nested deeper than %d", src, TREE_DEPTH_MAX);
    DIR *d = opendir(src);
    if (!d) return qb_errorf(err, "%s: cannot open directory: %s", src, strerror(errno));
    int rc = 0;
    struct dirent *e;
    char from[4096], to[4096], base[256];
    bool is_old;
    while (!rc && (e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        if ((depth == 0 && listed(name, skip)) || staged_name(name, base, sizeof base, &is_old) || atomic_tmp_name(name)) continue;
        if (join(from, sizeof from, src, name, err) || join(to, sizeof to, dst, name, err)) { rc = -1; break; }
        struct stat st;
        if (lstat(from, &st) != 0) {
            rc = qb_errorf(err, "%s: cannot stat: %s", from, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(to, st.st_mode & 07777) != 0) rc = qb_errorf(err, "%s: cannot create directory: %s", to, strerror(errno));
            else rc = link_tree(from, to, NULL, depth + 1, err);
        } else if (S_ISREG(st.st_mode)) {
            if (link(from, to) != 0) {
                int le = errno;
                if (le == EXDEV || le == EPERM || le == EMLINK || le == ENOTSUP || le == EOPNOTSUPP || le == ENOSYS) rc = qb_copy_file(from, to, err);
                else rc = qb_errorf(err, "%s: cannot link as %s: %s", from, to, strerror(le));
            }
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(from, target, sizeof target - 1);
            if (n < 0) rc = qb_errorf(err, "%s: cannot read link: %s", from, strerror(errno));
            else {
                target[n] = '\0';
                if (symlink(target, to) != 0) rc = qb_errorf(err, "%s: cannot create link: %s", to, strerror(errno));
            }
        } else {
            rc = qb_errorf(err, "%s: cannot carry %s into the new output", from, qb_file_kind((unsigned)st.st_mode));
        }
    }
    closedir(d);
    if (!rc) rc = qb_fsync_dir(dst, err);
    return rc ? -1 : 0;
}

/* fsyncs every directory of the tree (files are fsynced by their writers). */
static int fsync_tree(const char *path, int depth, qb_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    return each_child(path, depth, fsync_tree, err) || qb_fsync_dir(path, err) ? -1 : 0;
}

/* Splits a path into its directory and last component (trailing slashes ignored). */
static int split(const char *path, char *dir, size_t dn, char *name, size_t nn, qb_err *err) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return qb_errorf(err, "%s: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    const char *base = slash ? slash + 1 : buf;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) return qb_errorf(err, "%s: not a directory name", path);
    if (strlen(base) + 20 > NAME_MAX) return qb_errorf(err, "%s: name too long for a staging directory", path);
    snprintf(name, nn, "%s", base);
    if (!slash) snprintf(dir, dn, ".");
    else if (slash == buf) snprintf(dir, dn, "/");
    else snprintf(dir, dn, "%.*s", (int)(slash - buf), buf);
    return 0;
}

int qb_stage_begin(qb_stage *s, const char *final, qb_err *err) {
    memset(s, 0, sizeof *s);
    char dir[4096], name[NAME_MAX + 1], resolved[PATH_MAX];
    struct stat st;
    const char *place = final;
    if (lstat(final, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (!realpath(final, resolved)) return qb_errorf(err, "%s: cannot resolve: %s", final, strerror(errno));
        place = resolved;
    }
    if (strlen(place) >= sizeof s->final) return qb_errorf(err, "%s: path too long", place);
    if (split(place, dir, sizeof dir, name, sizeof name, err) || qb_mkdir_p(dir, err)) return -1;
    snprintf(s->final, sizeof s->final, "%s", place);
    if ((size_t)snprintf(s->path, sizeof s->path, "%s/.%s.tmp-%ld-XXXXXX", dir, name, (long)getpid()) >= sizeof s->path)
        return s->path[0] = '\0', qb_errorf(err, "%s: path too long", place);
    if (!mkdtemp(s->path)) {
        int e = errno;
        s->path[0] = '\0';
        return qb_errorf(err, "%s: cannot create a staging directory in %s: %s", place, dir, strerror(e));
    }
    if (chmod(s->path, 0755) != 0) {
        int e = errno;
        qb_stage_abort(s);
        return qb_errorf(err, "%s: chmod: %s", place, strerror(e));
    }
    return 0;
}

int qb_stage_begin_update(qb_stage *s, const char *final, const char *const *replaced, qb_err *err) {
    if (qb_stage_begin(s, final, err)) return -1;
    struct stat st;
    if (stat(s->final, &st) != 0) {
        if (errno == ENOENT) return 0;
        int e = errno;
        qb_stage_abort(s);
        return qb_errorf(err, "%s: cannot stat: %s", final, strerror(e));
    }
    if (!S_ISDIR(st.st_mode)) {
        qb_stage_abort(s);
        return qb_errorf(err, "%s: not a directory", final);
    }
    if (link_tree(s->final, s->path, replaced, 0, err)) {
        qb_stage_abort(s);
        return qb_err_context(err, "%s: carrying the other outputs over", final);
    }
    return 0;
}

int qb_stage_commit(qb_stage *s, qb_err *err) {
    if (!s->path[0]) return qb_errorf(err, "%s: not staged", s->final);
    char dir[4096], name[NAME_MAX + 1];
    if (split(s->final, dir, sizeof dir, name, sizeof name, err) || fsync_tree(s->path, 0, err)) return -1;
    struct stat st;
    if (lstat(s->final, &st) != 0 && errno == ENOENT) {
        if (rename(s->path, s->final) != 0) return qb_errorf(err, "%s: cannot rename %s into place: %s", s->final, s->path, strerror(errno));
        s->path[0] = '\0';
        return qb_fsync_dir(dir, err);
    }
    if (renameat2(AT_FDCWD, s->path, AT_FDCWD, s->final, RENAME_EXCHANGE) != 0) {
        int e = errno;
        if (e != EINVAL && e != ENOSYS && e != ENOTSUP && e != EOPNOTSUPP)
            return qb_errorf(err, "%s: cannot exchange with %s: %s", s->final, s->path, strerror(e));
        /* no exchange here: set the old unit aside (restored by qb_stage_clean if we die in between), rename in */
        char old[4096];
        const char *suffix = strrchr(s->path, '-');  /* "-XXXXXX" of the staging directory */
        if ((size_t)snprintf(old, sizeof old, "%s/.%s.old-%ld%s", dir, name, (long)getpid(), suffix) >= sizeof old)
            return qb_errorf(err, "%s: path too long", s->final);
        if (rename(s->final, old) != 0) return qb_errorf(err, "%s: cannot set aside as %s: %s", s->final, old, strerror(errno));
        if (rename(s->path, s->final) != 0) {
            e = errno;
            rename(old, s->final);
            return qb_errorf(err, "%s: cannot rename %s into place: %s", s->final, s->path, strerror(e));
        }
        snprintf(s->path, sizeof s->path, "%s", old);
    }
    /* s->path now holds the old unit */
    int rc = qb_fsync_dir(dir, err);
    if (!rc) rc = qb_remove_tree(s->path, err);
    s->path[0] = '\0';
    return rc;
}

void qb_stage_abort(qb_stage *s) {
    if (!s->path[0]) return;
    qb_err ignore = {0};
    qb_remove_tree(s->path, &ignore);
    s->path[0] = '\0';
}

/* Cleans the staged entries for `base` (or for any base when base is NULL) in dir. */
static int clean_in(const char *dir, const char *only_base, int *removed, qb_err *err) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : qb_errorf(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    char path[4096], unit[4096], base[NAME_MAX + 1];
    while (!rc && (e = readdir(d))) {
        bool is_old = false;
        bool staged = staged_name(e->d_name, base, sizeof base, &is_old);
        if (staged && only_base && strcmp(base, only_base) != 0) continue;
        if (!staged && (only_base || !atomic_tmp_name(e->d_name))) continue;
        if (join(path, sizeof path, dir, e->d_name, err)) { rc = -1; break; }
        struct stat st;
        if (staged && is_old && !join(unit, sizeof unit, dir, base, err) && lstat(unit, &st) != 0 && errno == ENOENT) {
            if (rename(path, unit) != 0) rc = qb_errorf(err, "%s: cannot restore as %s: %s", path, unit, strerror(errno));
        } else {
            rc = qb_remove_tree(path, err);
        }
        if (!rc && removed) (*removed)++;
    }
    closedir(d);
    return rc;
}

int qb_stage_clean_file(const char *final, int *removed, qb_err *err) {
    char dir[4096], name[NAME_MAX + 1], path[4096];
    if (split(final, dir, sizeof dir, name, sizeof name, err)) return -1;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : qb_errorf(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    size_t len = strlen(name);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (strncmp(e->d_name, name, len) != 0 || strncmp(e->d_name + len, ".tmp.", 5) != 0 || !atomic_tmp_name(e->d_name))
            continue;
        if (strchr(e->d_name + len + 5, '.')) continue;  /* "<name>.tmp.<pid>" exactly */
        rc = join(path, sizeof path, dir, e->d_name, err);
        if (!rc && unlink(path) != 0 && errno != ENOENT) rc = qb_errorf(err, "%s: cannot remove: %s", path, strerror(errno));
        if (!rc && removed) (*removed)++;
    }
    closedir(d);
    return rc;
}

int qb_stage_clean(const char *dir, int *removed, qb_err *err) {
    if (removed) *removed = 0;
    char parent[4096], name[NAME_MAX + 1], resolved[PATH_MAX];
    struct stat st;
    const char *place = dir;
    if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) && realpath(dir, resolved)) place = resolved;
    if (split(place, parent, sizeof parent, name, sizeof name, err)) return -1;
    if (clean_in(parent, name, removed, err)) return -1;
    return clean_in(place, NULL, removed, err);
}

/* run_output.c: see run_output.h. */
#include "run_output.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "base/staging.h"

#define BAD(...) return qat_config_error(src, "run", "output_dir", err, __VA_ARGS__)

/* The directory that holds path (path's last component removed). */
static void parent_of(const char *path, char *out, size_t n) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) snprintf(out, n, ".");
    else if (slash == buf) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(slash - buf), buf);
}

int run_output_open(run_output *o, const qat_config *c, const qat_config_source *src, qb_err *err) {
    memset(o, 0, sizeof *o);
    o->lock.fd = -1;
    o->export_lock.fd = -1;
    const char *dir = c->output_dir;
    snprintf(o->dir, sizeof o->dir, "%s", dir);
    char top[4096], parent[4096];
    qb_missing_ancestor(dir, top, sizeof top);
    struct stat st, pst;
    if (!top[0]) {  /* it exists */
        if (stat(dir, &st) != 0) BAD("'%s': %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode)) BAD("'%s' is %s, not a directory", dir, S_ISREG(st.st_mode) ? "a file" : qb_file_kind((unsigned)st.st_mode));
        if (access(dir, W_OK | X_OK) != 0) BAD("'%s' is not writable: %s", dir, strerror(errno));
        parent_of(dir, parent, sizeof parent);
        if (stat(parent, &pst) != 0) BAD("'%s': its parent %s: %s", dir, parent, strerror(errno));
        if (pst.st_dev != st.st_dev)
            BAD("'%s' is a mount point: outputs are staged beside it and renamed in, which cannot cross file systems (use a directory "
                "inside it)", dir);
    } else {
        parent_of(top, parent, sizeof parent);
        if (stat(parent, &pst) != 0) BAD("'%s': %s: %s", dir, parent, strerror(errno));
        if (!S_ISDIR(pst.st_mode)) BAD("'%s': %s is not a directory", dir, parent);
    }
    if (access(parent, W_OK | X_OK) != 0)
        BAD("'%s': %s is not writable (outputs are staged beside the directory): %s", dir, parent, strerror(errno));
    snprintf(o->created_top, sizeof o->created_top, "%s", top);
    if (qb_dir_lock_take(&o->lock, dir, err)) {
        char why[QB_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        qb_err_clear(err);
        run_output_close(o, true);
        BAD("%s", why);
    }
    bool exports = !strcmp(c->task, "export") || !strcmp(c->task, "ptq") || !strcmp(c->task, "qat");
    if (exports && c->export_path[0]) {  /* two runs must not write one export.path either (with format both: a pair) */
        char what[4096];
        snprintf(what, sizeof what, "%s", c->export_path);
        size_t len = strlen(what);
        if (!strcmp(c->export_format, "both") && len > 3 && !strcmp(what + len - 3, ".h5")) what[len - 3] = '\0';
        else if (!strcmp(c->export_format, "both") && len > 5 && !strcmp(what + len - 5, ".onnx")) what[len - 5] = '\0';
        parent_of(what, o->export_dir, sizeof o->export_dir);
        qb_missing_ancestor(o->export_dir, o->export_top, sizeof o->export_top);
        if (qb_dir_lock_take(&o->export_lock, what, err)) {
            char why[QB_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            qb_err_clear(err);
            run_output_close(o, true);
            return qat_config_error(src, "export", "path", err, "%s", why);
        }
        bool both = !strcmp(c->export_format, "both");
        char file[4200];
        int stale = 0;
        for (int k = 0; k < (both ? 2 : 1); k++) {
            snprintf(file, sizeof file, "%s%s", what, both ? (k ? ".onnx" : ".h5") : "");
            int n = 0;
            if (qb_stage_clean_file(file, &n, err)) {
                char why[QB_ERR_MSG_MAX];
                snprintf(why, sizeof why, "%s", err->msg);
                qb_err_clear(err);
                run_output_close(o, true);
                return qat_config_error(src, "export", "path", err, "%s", why);
            }
            stale += n;
        }
        if (stale) printf("output: %s: removed %d temporary file%s a killed run left\n", what, stale, stale > 1 ? "s" : "");
    }
    int removed = 0;
    if (qb_stage_clean(dir, &removed, err)) {
        run_output_close(o, true);
        return qb_err_context(err, "run.output_dir: removing what a killed run left");
    }
    if (removed) printf("output: %s: cleared %d entries a killed run left (staging removed, set-aside outputs restored)\n", dir, removed);
    return 0;
}

void run_output_close(run_output *o, bool failed) {
    qb_dir_lock_release(&o->lock);
    qb_dir_lock_release(&o->export_lock);
    if (failed && o->created_top[0]) qb_rmdir_empty(o->dir, o->created_top);
    if (failed && o->export_top[0]) qb_rmdir_empty(o->export_dir, o->export_top);
}

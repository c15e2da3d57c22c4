/* dirlock.h: an exclusive lock on an output directory for the whole of a run, so two runs never write into one
 * directory. The lock is an flock on <parent>/.<name>.lock (beside the directory, which need not exist yet and may be
 * replaced as a unit); the file holds the owner's pid for the message a second run gets. The kernel drops the lock
 * when its process dies, so a killed run leaves no stale lock. */
#pragma once
#include "base/error.h"

typedef struct qb_dir_lock {
    int fd;              /* -1 when not held */
    char path[4096];     /* the lock file */
} qb_dir_lock;

/* Takes the lock for dir (its parent directories are created); fails at once when another process holds it, with
 * "'DIR' is in use by another run (pid N); ..." naming dir as given. */
int qb_dir_lock_take(qb_dir_lock *l, const char *dir, qb_err *err);
/* Releases the lock and removes the lock file (a zeroed or released lock is ignored). */
void qb_dir_lock_release(qb_dir_lock *l);

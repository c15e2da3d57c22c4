/* staging.h: outputs of more than one file (a checkpoint, a model directory, a set of results) written as a unit.
 * The files go into a staging directory beside the final place, <parent>/.<name>.tmp-<pid>-<XXXXXX>; commit fsyncs
 * it and renames it into place as a whole, exchanging it with an existing unit (renameat2 RENAME_EXCHANGE; where the
 * file system cannot exchange, the old unit is set aside as .<name>.old-<pid>-<XXXXXX> first), then removes the old
 * one. A reader sees the old unit or the new one under the final name, never a mix or a part. */
#pragma once
#include <stdbool.h>
#include "base/error.h"

typedef struct qb_stage {
    char final[4096];  /* the unit's place (symbolic links resolved) */
    char path[4096];   /* the staging directory the caller writes into; "" when not staged */
} qb_stage;

/* Starts a new unit for `final` (its parents are created): an empty staging directory. */
int qb_stage_begin(qb_stage *s, const char *final, qb_err *err);
/* Starts a unit that updates the directory `final`: the staging directory starts with everything in final (hard
 * links, copies where links are impossible), except the top-level names in `replaced` (NULL-terminated), which the
 * new unit writes or drops. */
int qb_stage_begin_update(qb_stage *s, const char *final, const char *const *replaced, qb_err *err);
/* fsyncs the staging tree, puts it in place of final and removes the old unit. On failure final is unchanged. */
int qb_stage_commit(qb_stage *s, qb_err *err);
/* Removes the staging directory (final is untouched). Safe after commit or on a zeroed stage. */
void qb_stage_abort(qb_stage *s);
/* Removes what killed runs left for `dir`: staging directories beside it and in it, old units set aside (restored
 * when their unit is missing), and the temporary files of atomic writes in it. Call only while holding dir's lock.
 * *removed (may be NULL) counts the entries removed or restored. */
int qb_stage_clean(const char *dir, int *removed, qb_err *err);
/* Removes the "<final>.tmp.<pid>" files killed writers (qb_atomic_open) left beside the file `final`; hold final's lock. */
int qb_stage_clean_file(const char *final, int *removed, qb_err *err);
/* Removes a file or a directory tree (like rm -rf); a missing path is not an error. */
int qb_remove_tree(const char *path, qb_err *err);

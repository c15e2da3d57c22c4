/* run_output.h: run.output_dir for the whole of a run: checked before any work (a directory or creatable, writable,
 * its parent writable and on the same file system, since outputs are staged beside it), locked against a second run,
 * cleared of what killed runs left, created only when a task first writes, and removed after a failure when the run
 * created it and left it empty. */
#pragma once
#include <stdbool.h>
#include "base/dirlock.h"
#include "qat_config.h"

typedef struct run_output {
    qb_dir_lock lock;
    qb_dir_lock export_lock;       /* export.path's files, when the task exports outside output_dir */
    char export_top[4096];         /* the topmost directory the lock made for export.path ("" when none) */
    char export_dir[4096];
    char created_top[4096];  /* the topmost directory the run may create for output_dir ("" when it existed) */
    char dir[1024];
} run_output;

/* Checks c->output_dir, takes its lock and removes stale staging; errors name run.output_dir where it was set. A task
 * that exports to an export.path also locks that path (its stem for format both), naming export.path in errors. */
int run_output_open(run_output *o, const qat_config *c, const qat_config_source *src, qb_err *err);
/* Releases the locks; after a failure, removes output_dir and the parents made for it (and for export.path's lock) when
 * they are empty. */
void run_output_close(run_output *o, bool failed);

/* progress.h: the training progress display. On a terminal one line redrawn in place with \r (step/total, percent,
 * epoch, loss, lr, samples/s, elapsed<ETA as tqdm prints them), log lines printed above it; elsewhere only the
 * log lines, one per logging step. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct qb_progress {
    FILE *out;          /* NULL: nothing printed */
    bool live;          /* redraw a line in place (a terminal) */
    int64_t total;      /* steps of the run */
    int64_t first;      /* step the display started at (a resumed run's) */
    double t0;          /* start time, seconds */
    bool drawn;         /* a progress line is on the screen */
} qb_progress;

typedef struct qb_progress_state {
    int64_t step;       /* steps done */
    double epoch, loss, lr, samples_per_s;
} qb_progress_state;

/* Starts the display at step `first` of `total` at time t0 (seconds of a monotonic clock). */
void qb_progress_init(qb_progress *p, FILE *out, bool live, int64_t total, int64_t first, double t0);
/* Formats the progress line for state s at time t (no \r, no newline); returns buf. */
char *qb_progress_format(const qb_progress *p, const qb_progress_state *s, double t, char *buf, size_t n);
/* Redraws the line (live only). */
void qb_progress_update(qb_progress *p, const qb_progress_state *s, double t);
/* Prints a whole log line (text without its newline), above the live line when one is drawn. */
void qb_progress_log(qb_progress *p, const char *text);
/* Ends the live line with a newline. */
void qb_progress_finish(qb_progress *p);
/* "MM:SS" or "H:MM:SS" of a duration in seconds. */
char *qb_format_duration(double seconds, char *buf, size_t n);

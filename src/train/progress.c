/* progress.c: see progress.h. */
#include "train/progress.h"

#include <math.h>

void qb_progress_init(qb_progress *p, FILE *out, bool live, int64_t total, int64_t first, double t0) {
    *p = (qb_progress){.out = out, .live = live && out, .total = total, .first = first, .t0 = t0};
}

char *qb_format_duration(double seconds, char *buf, size_t n) {
    if (!(seconds >= 0) || isinf(seconds)) {
        snprintf(buf, n, "?");
        return buf;
    }
    long long s = (long long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, n, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, n, "%02lld:%02lld", s / 60, s % 60);
    return buf;
}

char *qb_progress_format(const qb_progress *p, const qb_progress_state *s, double t, char *buf, size_t n) {
    double elapsed = t - p->t0;
    int64_t done = s->step - p->first, left = p->total - s->step;
    double eta = done > 0 ? elapsed / (double)done * (double)left : NAN;
    char e[32], r[32];
    int pct = p->total > 0 ? (int)(100 * s->step / p->total) : 100;
    snprintf(buf, n, "%lld/%lld [%3d%%] epoch %.2f  loss %.4f  lr %.3e  %.1f samples/s  %s<%s", (long long)s->step,
             (long long)p->total, pct, s->epoch, s->loss, s->lr, s->samples_per_s, qb_format_duration(elapsed, e, sizeof e),
             qb_format_duration(eta, r, sizeof r));
    return buf;
}

void qb_progress_update(qb_progress *p, const qb_progress_state *s, double t) {
    if (!p->live) return;
    char line[512];
    /* \r, the line, then clear to the end of the line (a shorter line leaves nothing of the last) */
    fprintf(p->out, "\r%s\033[K", qb_progress_format(p, s, t, line, sizeof line));
    fflush(p->out);
    p->drawn = true;
}

void qb_progress_log(qb_progress *p, const char *text) {
    if (!p->out) return;
    if (p->drawn) fprintf(p->out, "\r\033[K");
    fprintf(p->out, "%s\n", text);
    fflush(p->out);
    p->drawn = false;
}

void qb_progress_finish(qb_progress *p) {
    if (p->drawn) fprintf(p->out, "\n");
    if (p->out) fflush(p->out);
    p->drawn = false;
}

/* watchdog.c: see watchdog.h. */
#include "dist/watchdog.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Wakes every WATCH_PERIOD_S (or at stop), so it fires within [timeout, timeout + period]. */
#define WATCH_PERIOD_S 0.5

static void *watchdog_main(void *arg) {
    qb_watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double wake = qb_comm_now() + WATCH_PERIOD_S;
        struct timespec ts = {.tv_sec = (time_t)wake, .tv_nsec = (long)((wake - (double)(time_t)wake) * 1e9)};
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (!w->stop && w->since != 0.0 && qb_comm_now() - w->since >= w->c->timeout_s) {
            fprintf(stderr, "qdqbert: rank %d/%d: %s did not complete within %.0f s: another rank died or hangs (QB_COMM_TIMEOUT sets the limit)\n",
                    w->c->rank, w->c->size, w->what, w->c->timeout_s);
            fflush(stderr);
            _exit(3);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int qb_watchdog_start(qb_watchdog *w, const qb_comm *c, qb_err *err) {
    memset(w, 0, sizeof *w);
    w->c = c;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_mutex_init(&w->mu, NULL) || pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (bad || pthread_create(&w->thread, NULL, watchdog_main, w)) return qb_errorf(err, "cannot start the collective watchdog thread");
    w->running = true;
    return 0;
}

void qb_watchdog_begin(qb_watchdog *w, const char *what) {
    pthread_mutex_lock(&w->mu);
    w->since = qb_comm_now();
    snprintf(w->what, sizeof w->what, "%s", what);
    pthread_mutex_unlock(&w->mu);
}

void qb_watchdog_end(qb_watchdog *w) {
    pthread_mutex_lock(&w->mu);
    w->since = 0.0;
    pthread_mutex_unlock(&w->mu);
}

void qb_watchdog_stop(qb_watchdog *w) {
    if (!w->running) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->running = false;
}

/* arena.c: see arena.h. */
#include "autograd/arena.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN(n) (((n) + 63) & ~(size_t)63)

int qb_arena_init(qb_arena *a, const qb_kernels *k, qb_dev *dev, size_t cap) {
    memset(a, 0, sizeof *a);
    a->k = k;
    a->dev = dev;
    if (cap) {
        a->base = k->alloc(dev, cap);
        if (!a->base) return -1;
        a->cap = cap;
    }
    return 0;
}

/* The smallest released range of at least `bytes`, cut from its front; NULL when none. */
static void *from_hole(qb_arena *a, size_t bytes) {
    size_t best = a->n_holes;
    for (size_t i = 0; i < a->n_holes; i++)
        if (a->holes[i].n >= bytes && (best == a->n_holes || a->holes[i].n < a->holes[best].n)) best = i;
    if (best == a->n_holes) return NULL;
    char *p = a->holes[best].p;
    a->holes[best].p += bytes;
    a->holes[best].n -= bytes;
    if (!a->holes[best].n) a->holes[best] = a->holes[--a->n_holes];
    return p;
}

void *qb_arena_alloc(qb_arena *a, size_t bytes) {
    bytes = ALIGN(bytes ? bytes : 1);
    void *reused = from_hole(a, bytes);
    if (reused) return reused;
    if (a->used + bytes <= a->cap) {
        void *p = a->base + a->used;
        a->used += bytes;
        if (a->used + a->spill_bytes > a->peak) a->peak = a->used + a->spill_bytes;
        return p;
    }
    if (a->n_spill == a->cap_spill) {
        size_t nc = a->cap_spill ? 2 * a->cap_spill : 16;
        void **ns = realloc(a->spill, nc * sizeof *ns);
        if (!ns) return NULL;
        a->spill = ns;
        a->cap_spill = nc;
    }
    void *p = a->k->alloc(a->dev, bytes);
    if (!p) return NULL;
    a->spill[a->n_spill++] = p;
    a->spill_bytes += bytes;
    if (a->used + a->spill_bytes > a->peak) a->peak = a->used + a->spill_bytes;
    return p;
}

int qb_arena_release(qb_arena *a, void *p, size_t bytes) {
    char *lo = p, *hi = lo + ALIGN(bytes ? bytes : 1);
    bool in_base = lo >= a->base && hi <= a->base + a->used; /* else a spilled block: kept apart from its neighbours */
    for (size_t i = 0; in_base && i < a->n_holes;) {         /* merge with the released ranges of base it touches */
        struct qb_arena_hole *h = &a->holes[i];
        bool h_in_base = h->p >= a->base && h->p + h->n <= a->base + a->used;
        if (h_in_base && (h->p + h->n == lo || hi == h->p)) {
            if (h->p < lo) lo = h->p;
            else hi = h->p + h->n;
            *h = a->holes[--a->n_holes];
        } else {
            i++;
        }
    }
    if (in_base && hi == a->base + a->used) { /* the top of the block: used shrinks */
        a->used = (size_t)(lo - a->base);
        return 0;
    }
    if (a->n_holes == a->cap_holes) {
        size_t nc = a->cap_holes ? 2 * a->cap_holes : 16;
        struct qb_arena_hole *nh = realloc(a->holes, nc * sizeof *nh);
        if (!nh) return -1;
        a->holes = nh;
        a->cap_holes = nc;
    }
    a->holes[a->n_holes++] = (struct qb_arena_hole){lo, (size_t)(hi - lo)};
    return 0;
}

int qb_arena_reset(qb_arena *a) {
    int rc = 0;
    a->n_holes = 0;
    if (a->n_spill) {
        for (size_t i = 0; i < a->n_spill; i++) a->k->release(a->dev, a->spill[i]);
        a->n_spill = 0;
        a->spill_bytes = 0;
        size_t ncap = ALIGN(a->peak + a->peak / 8);
        a->k->release(a->dev, a->base);
        a->base = a->k->alloc(a->dev, ncap);
        a->cap = a->base ? ncap : 0;
        if (!a->base) rc = -1;
    }
    a->used = 0;
    return rc;
}

void qb_arena_free(qb_arena *a) {
    for (size_t i = 0; i < a->n_spill; i++) a->k->release(a->dev, a->spill[i]);
    free(a->spill);
    free(a->holes);
    a->k->release(a->dev, a->base);
    memset(a, 0, sizeof *a);
}

/* arena.c: see arena.h. */
#include "autograd/arena.h"

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

void *qb_arena_alloc(qb_arena *a, size_t bytes) {
    bytes = ALIGN(bytes ? bytes : 1);
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

int qb_arena_reset(qb_arena *a) {
    int rc = 0;
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
    a->k->release(a->dev, a->base);
    memset(a, 0, sizeof *a);
}

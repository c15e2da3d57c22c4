/* arena.h: a bump allocator reset every step; it grows to the step's peak and then stops allocating. */
#pragma once
#include <stddef.h>
#include "autograd/backend.h"

typedef struct qb_arena {
    const qb_kernels *k; /* the device whose memory it hands out (alloc, release) */
    qb_dev *dev;
    char *base;          /* one block of cap bytes of that device */
    size_t cap, used;
    void **spill;        /* blocks allocated when base was full; merged into base at reset */
    size_t n_spill, cap_spill, spill_bytes;
    size_t peak;         /* largest used + spill_bytes seen */
} qb_arena;

/* Initialises an arena of `cap` bytes of a device's memory (cap may be 0: it grows on first use). */
int qb_arena_init(qb_arena *a, const qb_kernels *k, qb_dev *dev, size_t cap);
/* Returns 64-byte aligned memory valid until the next reset, or NULL when out of memory. */
void *qb_arena_alloc(qb_arena *a, size_t bytes);
/* Frees nothing but makes all memory reusable; after a step that spilled, base grows to the peak. */
int qb_arena_reset(qb_arena *a);
/* Releases all memory. */
void qb_arena_free(qb_arena *a);

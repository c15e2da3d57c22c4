/* arena.h: a bump allocator reset every step; it grows to the step's peak and then stops allocating. Memory handed
 * back during the step (qb_arena_release) is reused by later allocations of the same step (best fit). */
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
    struct qb_arena_hole { char *p; size_t n; } *holes; /* released ranges, reused before used grows */
    size_t n_holes, cap_holes;
} qb_arena;

/* Initialises an arena of `cap` bytes of a device's memory (cap may be 0: it grows on first use). */
int qb_arena_init(qb_arena *a, const qb_kernels *k, qb_dev *dev, size_t cap);
/* Returns 64-byte aligned memory valid until the next reset, or NULL when out of memory. */
void *qb_arena_alloc(qb_arena *a, size_t bytes);
/* Hands back `bytes` at p (from qb_arena_alloc of this step, not used again) for later allocations of this step; 0, or
 * -1 when the host is out of memory (p is then just not reused). */
int qb_arena_release(qb_arena *a, void *p, size_t bytes);
/* Frees nothing but makes all memory reusable; after a step that spilled, base grows to the peak. */
int qb_arena_reset(qb_arena *a);
/* Releases all memory. */
void qb_arena_free(qb_arena *a);

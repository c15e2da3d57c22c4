/* arena.h: a bump allocator reset every step; it grows to the step's peak and then stops allocating. */
#pragma once
#include <stddef.h>
#include "autograd/device.h"

typedef struct qb_arena {
    qb_device device;
    char *base;          /* one block of cap bytes (device memory when device != QB_CPU) */
    size_t cap, used;
    void **spill;        /* blocks allocated when base was full; merged into base at reset */
    size_t n_spill, cap_spill, spill_bytes;
    size_t peak;         /* largest used + spill_bytes seen */
} qb_arena;

/* Initialises an arena of `cap` bytes on a device (cap may be 0: it grows on first use). */
int qb_arena_init(qb_arena *a, qb_device device, size_t cap);
/* Returns 64-byte aligned memory valid until the next reset, or NULL when out of memory. */
void *qb_arena_alloc(qb_arena *a, size_t bytes);
/* Frees nothing but makes all memory reusable; after a step that spilled, base grows to the peak. */
int qb_arena_reset(qb_arena *a);
/* Releases all memory. */
void qb_arena_free(qb_arena *a);

/* device.h: where tensor memory lives, and the raw allocation calls of each device. */
#pragma once
#include <stddef.h>

typedef enum { QB_CPU = 0, QB_CUDA = 1 } qb_device;

/* Allocates bytes on a device (64-byte aligned on the CPU); NULL on failure. */
void *qb_device_malloc(qb_device dev, size_t bytes);
/* Frees memory from qb_device_malloc. */
void qb_device_free(qb_device dev, void *p);
/* Name of a device ("cpu", "cuda"). */
const char *qb_device_name(qb_device dev);

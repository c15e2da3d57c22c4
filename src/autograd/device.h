/* device.h: where tensor memory lives (the device's allocation calls are entries of its kernel table, backend.h). */
#pragma once

typedef enum { QB_CPU = 0, QB_CUDA = 1 } qb_device;

/* Name of a device ("cpu", "cuda"). */
const char *qb_device_name(qb_device dev);
/* Parses "cpu", "cuda" (ordinal 0) or "cuda:N" (the N-th visible CUDA device); -1 when s is none of them. */
int qb_device_parse(const char *s, qb_device *dev, int *ordinal);

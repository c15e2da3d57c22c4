/* device.h: where tensor memory lives (the device's allocation calls are entries of its kernel table, backend.h). */
#pragma once

typedef enum { QB_CPU = 0, QB_CUDA = 1 } qb_device;

/* Name of a device ("cpu", "cuda"). */
const char *qb_device_name(qb_device dev);

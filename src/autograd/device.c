/* device.c: see device.h. */
#include "autograd/device.h"

const char *qb_device_name(qb_device dev) { return dev == QB_CUDA ? "cuda" : "cpu"; }

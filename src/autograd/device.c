/* device.c: see device.h. */
#include "autograd/device.h"

#include <stdlib.h>
#include <string.h>

const char *qb_device_name(qb_device dev) { return dev == QB_CUDA ? "cuda" : "cpu"; }

int qb_device_parse(const char *s, qb_device *dev, int *ordinal) {
    if (strcmp(s, "cpu") == 0) return *dev = QB_CPU, *ordinal = 0, 0;
    if (strncmp(s, "cuda", 4) != 0) return -1;
    if (s[4] == '\0') return *dev = QB_CUDA, *ordinal = 0, 0;
    if (s[4] != ':' || s[5] < '0' || s[5] > '9') return -1;
    char *end = NULL;
    long n = strtol(s + 5, &end, 10);
    if (*end || n > 1023) return -1;
    *dev = QB_CUDA;
    *ordinal = (int)n;
    return 0;
}

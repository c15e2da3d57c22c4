/* backend_stub.c: the CUDA backend when built without CUDA: every call fails with a clear message. */
#include "autograd/cuda/backend.h"

#include <stdio.h>

int qb_cuda_device_count(void) { return 0; }
void qb_cuda_describe(char *buf, size_t n) { snprintf(buf, n, "built without CUDA (meson setup -Dcuda=enabled)"); }
qb_dev *qb_cuda_init(int ordinal, char *msg, size_t n) {
    (void)ordinal;
    snprintf(msg, n, "this build has no CUDA backend (reconfigure with -Dcuda=enabled)");
    return NULL;
}
void qb_cuda_shutdown(qb_dev *d) { (void)d; }
void *qb_cuda_malloc(size_t bytes) { (void)bytes; return NULL; }
void qb_cuda_free(void *p) { (void)p; }
const char *qb_cuda_last_error(void) { return "built without CUDA"; }

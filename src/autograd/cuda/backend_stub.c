/* backend_stub.c: the CUDA backend when built without CUDA: every call fails with a clear message. */
#include "autograd/cuda/backend.h"

#include <stdio.h>

int qb_cuda_device_count(void) { return 0; }
void qb_cuda_describe(char *buf, size_t n) { snprintf(buf, n, "built without CUDA (meson setup -Dcuda=enabled)"); }
void *qb_cuda_init(char *msg, size_t n) {
    snprintf(msg, n, "this build has no CUDA backend (reconfigure with -Dcuda=enabled)");
    return NULL;
}
void qb_cuda_shutdown(void *state) { (void)state; }
void *qb_cuda_malloc(size_t bytes) { (void)bytes; return NULL; }
void qb_cuda_free(void *p) { (void)p; }
int qb_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; return -1; }
int qb_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; return -1; }
int qb_cuda_fill(float *dst, int64_t n, float value) { (void)dst; (void)n; (void)value; return -1; }

/* backend.h: the CUDA runtime side of the engine (memory, copies, cuBLAS/cuBLASLt handles).
 * Built from backend.cu when CUDA is enabled, else from backend_stub.c whose calls all fail cleanly. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of visible CUDA devices (0 when there is no driver or no GPU). */
int qb_cuda_device_count(void);
/* One line describing the runtime, driver and library versions, into buf. */
void qb_cuda_describe(char *buf, size_t n);
/* Creates the backend state (stream, cuBLAS and cuBLASLt handles) on device 0; NULL with a message on failure. */
void *qb_cuda_init(char *msg, size_t n);
/* Destroys the backend state. */
void qb_cuda_shutdown(void *state);
/* Device memory. */
void *qb_cuda_malloc(size_t bytes);
void qb_cuda_free(void *p);
int qb_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes);
int qb_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes);
/* Fills n floats of device memory with value. */
int qb_cuda_fill(float *dst, int64_t n, float value);

#ifdef __cplusplus
}
#endif

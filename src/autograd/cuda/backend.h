/* backend.h: the CUDA runtime side of the engine: device state (stream, cuBLAS and cuBLASLt handles, workspace) and
 * memory. Built from backend.cu when CUDA is enabled, else from backend_stub.c whose calls all fail cleanly. The
 * device's kernels are in kernels.h (its table in kernels.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "autograd/backend.h"
#include "autograd/cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of visible CUDA devices (0 when there is no driver or no GPU). */
int qb_cuda_device_count(void);
/* One line describing the runtime, driver and library versions, into buf. */
void qb_cuda_describe(char *buf, size_t n);
/* Creates the device state (stream, cuBLAS and cuBLASLt handles, workspace) on the visible device `ordinal` and makes
 * it the calling thread's current device; NULL with a message (cudaGetErrorString / cublasGetStatusString included)
 * on failure. */
qb_dev *qb_cuda_init(int ordinal, char *msg, size_t n);
/* Destroys the device state. */
void qb_cuda_shutdown(qb_dev *d);
/* Device memory (NULL on failure: qb_cuda_last_error says why). */
void *qb_cuda_malloc(size_t bytes);
void qb_cuda_free(void *p);
/* cudaGetErrorString of the last runtime error (and clears it), for messages about calls without a state. */
const char *qb_cuda_last_error(void);

#ifdef __cplusplus
}
#endif

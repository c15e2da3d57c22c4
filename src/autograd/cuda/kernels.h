/* kernels.h: the CUDA kernels of the table (one declaration per entry, with the entry's type from backend.h; the
 * table is cuda/kernels.c). A kernel file cuda/<op>.cu defines its entries with C linkage. */
#pragma once
#include "autograd/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the last failed kernel call on this state (cudaGetErrorString included). */
const char *qb_cuda_error_message(qb_dev *d);
/* 0 when cuda_error (a cudaError_t) is cudaSuccess; else records "what: cudaGetErrorString (name)" in d, returns -1. */
int qb_cuda_status(qb_dev *d, const char *what, int cuda_error);
/* The state's stream (a cudaStream_t), cuBLAS and cuBLASLt handles (cublasHandle_t, cublasLtHandle_t) and cuBLASLt
 * workspace, for the kernel files (no CUDA types in this header). */
void *qb_cuda_stream(qb_dev *d);
void *qb_cuda_blas(qb_dev *d);
void *qb_cuda_blaslt(qb_dev *d);
void *qb_cuda_workspace(qb_dev *d, size_t *bytes);
/* At least `bytes` of device scratch for an entry's partial sums, valid until the entry's launches end (one stream);
 * grown (stream-ordered, never shrunk) only when an entry needs more than before, i.e. for a new shape. NULL with the
 * message in d when out of memory. */
void *qb_cuda_scratch(qb_dev *d, size_t bytes);

/* backend.cu: memory */
qb_k_fill qb_cuda_fill;
qb_k_memcpy qb_cuda_memcpy_h2d;
qb_k_memcpy qb_cuda_memcpy_d2h;
qb_k_memcpy qb_cuda_memcpy_d2d;
/* layernorm.cu, softmax.cu, dropout.cu, embedding.cu, loss.cu */
qb_k_layernorm qb_cuda_layernorm;
qb_k_layernorm_grad_params qb_cuda_layernorm_grad_params;
qb_k_layernorm_grad_input qb_cuda_layernorm_grad_input;
qb_k_softmax qb_cuda_softmax;
qb_k_softmax_grad qb_cuda_softmax_grad;
qb_k_dropout qb_cuda_dropout;
qb_k_dropout_grad qb_cuda_dropout_grad;
qb_k_embedding qb_cuda_embedding;
qb_k_embedding_grad qb_cuda_embedding_grad;
qb_k_cross_entropy qb_cuda_cross_entropy;
qb_k_cross_entropy_grad qb_cuda_cross_entropy_grad;
qb_k_mse qb_cuda_mse;
qb_k_mse_grad qb_cuda_mse_grad;
qb_k_bce qb_cuda_bce;
qb_k_bce_grad qb_cuda_bce_grad;

#ifdef __cplusplus
}
#endif

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
/* The same for a cuBLAS / cuBLASLt status (cublasStatus_t): "what: cublasGetStatusString (name)". */
int qb_cuda_blas_status(qb_dev *d, const char *what, int status);
/* The state's stream (a cudaStream_t), cuBLAS and cuBLASLt handles (cublasHandle_t, cublasLtHandle_t) and cuBLASLt
 * workspace, for the kernel files (no CUDA types in this header). */
void *qb_cuda_stream(qb_dev *d);
void *qb_cuda_blas(qb_dev *d);
void *qb_cuda_blaslt(qb_dev *d);
void *qb_cuda_workspace(qb_dev *d, size_t *bytes);
/* At least `bytes` of device memory for a kernel's temporaries, valid until the next call (one buffer per state,
 * reallocated only when a call needs more than ever before); NULL with the state's message when out of memory. */
void *qb_cuda_scratch(qb_dev *d, size_t bytes);
/* The state's GEMM precision. */
qb_precision qb_cuda_precision(qb_dev *d);

/* backend.cu: memory */
qb_k_fill qb_cuda_fill;
qb_k_memcpy qb_cuda_memcpy_h2d;
qb_k_memcpy qb_cuda_memcpy_d2h;
qb_k_memcpy qb_cuda_memcpy_d2d;
qb_k_set_precision qb_cuda_set_precision;
/* memory.cu, shape.cu */
qb_k_axpy qb_cuda_axpy;
qb_k_copy_strided qb_cuda_copy_strided;
qb_k_accumulate_strided qb_cuda_accumulate_strided;
/* matmul.cu */
qb_k_gemm qb_cuda_gemm;
qb_k_cast_bf16 qb_cuda_cast_bf16;
qb_k_bias_rows qb_cuda_bias_rows;
qb_k_col_sum qb_cuda_col_sum;
qb_k_gemm_epilogue qb_cuda_gemm_epilogue;
/* elementwise.cu */
qb_k_binary qb_cuda_binary;
qb_k_binary_grad_b qb_cuda_binary_grad_b;
qb_k_mul_grad_a qb_cuda_mul_grad_a;
qb_k_scale qb_cuda_scale;
/* activation.cu */
qb_k_unary qb_cuda_unary;
qb_k_unary_grad qb_cuda_unary_grad;
/* reduce.cu */
qb_k_sum qb_cuda_sum;
qb_k_sum_grad qb_cuda_sum_grad;
/* optim.cu */
qb_k_adamw qb_cuda_adamw;
qb_k_grad_norm qb_cuda_grad_norm;
qb_k_grad_clip qb_cuda_grad_clip;
/* backend.cu */
qb_k_mem_info qb_cuda_mem_info;
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
qb_k_distill_kl qb_cuda_distill_kl;
qb_k_distill_kl_grad qb_cuda_distill_kl_grad;
qb_k_mse qb_cuda_mse;
qb_k_mse_grad qb_cuda_mse_grad;
qb_k_bce qb_cuda_bce;
qb_k_bce_grad qb_cuda_bce_grad;

#ifdef __cplusplus
}
#endif

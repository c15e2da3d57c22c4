/* kernels.h: the CPU kernels of the table (entry types in autograd/backend.h; the table is cpu/kernels.c). Each file
 * cpu/<op>.c holds the kernels of the op file op_<op>.c; the device state argument is unused (NULL). */
#pragma once
#include "autograd/backend.h"

/* memory.c */
qb_k_alloc qb_cpu_alloc;
qb_k_release qb_cpu_release;
const char *qb_cpu_error_message(qb_dev *d);  /* a CPU kernel fails only when out of memory */
qb_k_fill qb_cpu_fill;
qb_k_memcpy qb_cpu_memcpy;
qb_k_axpy qb_cpu_axpy;
/* shape.c */
qb_k_copy_strided qb_cpu_copy_strided;
qb_k_accumulate_strided qb_cpu_accumulate_strided;
/* matmul.c */
qb_k_gemm qb_cpu_gemm;
/* True when the build has oneDNN (its sgemm is then the CPU's default fp32 GEMM). */
bool qb_cpu_have_onednn(void);
/* gemm_bf16.c: fp32 and bf16 (oneDNN built in, CPU with AVX512-BF16 or AMX) */
qb_k_set_precision qb_cpu_set_precision;
qb_k_cast_bf16 qb_cpu_cast_bf16;
/* Why this build or CPU cannot run bf16 GEMMs (one sentence), or NULL when it can. */
const char *qb_cpu_bf16_unavailable(void);
/* qb_cpu_gemm_lib for precision bf16 with m, n, k and the batch non-empty: 0, or -1 when oneDNN fails (out of memory). */
int qb_cpu_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, const void *b,
                     int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt);
qb_k_bias_rows qb_cpu_bias_rows;
qb_k_col_sum qb_cpu_col_sum;
/* elementwise.c */
qb_k_binary qb_cpu_binary;
qb_k_binary_grad_b qb_cpu_binary_grad_b;
qb_k_mul_grad_a qb_cpu_mul_grad_a;
qb_k_scale qb_cpu_scale;
/* activation.c */
qb_k_unary qb_cpu_unary;
qb_k_unary_grad qb_cpu_unary_grad;
/* layernorm.c */
qb_k_layernorm qb_cpu_layernorm;
qb_k_layernorm_grad_params qb_cpu_layernorm_grad_params;
qb_k_layernorm_grad_input qb_cpu_layernorm_grad_input;
/* softmax.c */
qb_k_softmax qb_cpu_softmax;
qb_k_softmax_grad qb_cpu_softmax_grad;
/* dropout.c */
qb_k_dropout qb_cpu_dropout;
qb_k_dropout_grad qb_cpu_dropout_grad;
/* embedding.c */
qb_k_embedding qb_cpu_embedding;
qb_k_embedding_grad qb_cpu_embedding_grad;
/* reduce.c */
qb_k_sum qb_cpu_sum;
qb_k_sum_grad qb_cpu_sum_grad;
/* loss.c */
qb_k_cross_entropy qb_cpu_cross_entropy;
qb_k_cross_entropy_grad qb_cpu_cross_entropy_grad;
qb_k_distill_kl qb_cpu_distill_kl;
qb_k_distill_kl_grad qb_cpu_distill_kl_grad;
qb_k_mse qb_cpu_mse;
qb_k_mse_grad qb_cpu_mse_grad;
qb_k_bce qb_cpu_bce;
qb_k_bce_grad qb_cpu_bce_grad;
/* optim.c */
qb_k_adamw qb_cpu_adamw;
qb_k_grad_norm qb_cpu_grad_norm;
qb_k_grad_clip qb_cpu_grad_clip;

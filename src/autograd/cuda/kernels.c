/* kernels.c: the CUDA kernel table. Entries not listed are NULL: ops that need them fail with "no cuda kernel".
 * Adding a kernel: its declaration in kernels.h and one line here. */
#include "autograd/cuda/backend.h"

#ifdef QB_HAVE_CUDA
static void *cuda_alloc(qb_dev *d, size_t bytes) {
    (void)d;
    return qb_cuda_malloc(bytes ? bytes : 64);
}

static void cuda_release(qb_dev *d, void *p) {
    (void)d;
    if (p) qb_cuda_free(p);
}
#endif

const qb_kernels qb_cuda_kernels = {
    .name = "cuda",
#ifdef QB_HAVE_CUDA
    .error_message = qb_cuda_error_message,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .fill = qb_cuda_fill,
    .memcpy_h2d = qb_cuda_memcpy_h2d,
    .memcpy_d2h = qb_cuda_memcpy_d2h,
    .memcpy_d2d = qb_cuda_memcpy_d2d,
    .set_precision = qb_cuda_set_precision,
    .axpy = qb_cuda_axpy,
    .copy_strided = qb_cuda_copy_strided,
    .accumulate_strided = qb_cuda_accumulate_strided,
    .scale = qb_cuda_scale,
    .gemm = qb_cuda_gemm,
    .cast_bf16 = qb_cuda_cast_bf16,
    .bias_rows = qb_cuda_bias_rows,
    .col_sum = qb_cuda_col_sum,
    .gemm_epilogue = qb_cuda_gemm_epilogue,
    .binary = qb_cuda_binary,
    .binary_grad_b = qb_cuda_binary_grad_b,
    .mul_grad_a = qb_cuda_mul_grad_a,
    .unary = qb_cuda_unary,
    .unary_grad = qb_cuda_unary_grad,
    .sum = qb_cuda_sum,
    .sum_grad = qb_cuda_sum_grad,
    .adamw = qb_cuda_adamw,
    .grad_norm = qb_cuda_grad_norm,
    .grad_clip = qb_cuda_grad_clip,
    .mem_info = qb_cuda_mem_info,
    .layernorm = qb_cuda_layernorm,
    .layernorm_grad_params = qb_cuda_layernorm_grad_params,
    .layernorm_grad_input = qb_cuda_layernorm_grad_input,
    .softmax = qb_cuda_softmax,
    .softmax_grad = qb_cuda_softmax_grad,
    .dropout = qb_cuda_dropout,
    .dropout_grad = qb_cuda_dropout_grad,
    .embedding = qb_cuda_embedding,
    .embedding_grad = qb_cuda_embedding_grad,
    .cross_entropy = qb_cuda_cross_entropy,
    .cross_entropy_grad = qb_cuda_cross_entropy_grad,
    .distill_kl = qb_cuda_distill_kl,
    .distill_kl_grad = qb_cuda_distill_kl_grad,
    .mse = qb_cuda_mse,
    .mse_grad = qb_cuda_mse_grad,
    .bce = qb_cuda_bce,
    .bce_grad = qb_cuda_bce_grad,
#endif
};

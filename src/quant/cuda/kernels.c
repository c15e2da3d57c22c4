/* kernels.c: the CUDA quant kernel table. Entries not listed are NULL: their ops fail with "no cuda kernel".
 * Adding a kernel: its declaration in kernels.h and one line here (inside QB_HAVE_CUDA). */
#include "quant/cuda/kernels.h"

const qb_quant_kernels qb_quant_cuda_kernels = {
    .name = "cuda",
#ifdef QB_HAVE_CUDA
    .fake_quant = qb_cuda_fake_quant,
    .fake_quant_grad = qb_cuda_fake_quant_grad,
    .fake_quant_block = qb_cuda_fake_quant_block,
    .fake_quant_mask_rows = qb_cuda_fake_quant_mask_rows,
    .fake_quant_learnable = qb_cuda_fake_quant_learnable,
    .fake_quant_learnable_grad = qb_cuda_fake_quant_learnable_grad,
    .fake_quant_lsq = qb_cuda_fake_quant_lsq,
    .fake_quant_lsq_grad = qb_cuda_fake_quant_lsq_grad,
    .amax_reduce = qb_cuda_amax_reduce,
    .any_negative = qb_cuda_any_negative,
    .abs_stats = qb_cuda_abs_stats,
    .histogram = qb_cuda_histogram,
    .softmax_fq = qb_cuda_softmax_fq,
    .softmax_fq_grad = qb_cuda_softmax_fq_grad,
    .act_fq = qb_cuda_act_fq,
    .act_fq_grad = qb_cuda_act_fq_grad,
    .add_fq_layernorm = qb_cuda_add_fq_layernorm,
    .add_fq_layernorm_grad = qb_cuda_add_fq_layernorm_grad,
    .quantize_s8 = qb_cuda_quantize_s8,
    .gemm_s8 = qb_cuda_gemm_s8,
    .dequant_s32 = qb_cuda_dequant_s32,
#endif
};

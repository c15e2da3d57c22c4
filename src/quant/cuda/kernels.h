/* kernels.h: the CUDA kernels of the quant table (one declaration per entry with the entry's type from
 * quant/quant_kernels.h; the table is cuda/kernels.c). A kernel file cuda/<op>.cu defines its entries with C linkage. */
#pragma once
#include "quant/quant_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fake_quant.cu */
qb_qk_fake_quant qb_cuda_fake_quant;
qb_qk_fake_quant_grad qb_cuda_fake_quant_grad;
qb_qk_fake_quant_block qb_cuda_fake_quant_block;
qb_qk_fake_quant_mask_rows qb_cuda_fake_quant_mask_rows;
qb_qk_fake_quant_learnable qb_cuda_fake_quant_learnable;
qb_qk_fake_quant_learnable_grad qb_cuda_fake_quant_learnable_grad;
qb_qk_fake_quant_lsq qb_cuda_fake_quant_lsq;
qb_qk_fake_quant_lsq_grad qb_cuda_fake_quant_lsq_grad;
qb_qk_any_negative qb_cuda_any_negative;
/* calib_max.cu */
qb_qk_amax_reduce qb_cuda_amax_reduce;
/* calib_histogram.cu */
qb_qk_abs_stats qb_cuda_abs_stats;
qb_qk_histogram qb_cuda_histogram;
/* fused.cu */
qb_qk_softmax_fq qb_cuda_softmax_fq;
qb_qk_softmax_fq_grad qb_cuda_softmax_fq_grad;
qb_qk_act_fq qb_cuda_act_fq;
qb_qk_act_fq_grad qb_cuda_act_fq_grad;
qb_qk_add_fq_layernorm qb_cuda_add_fq_layernorm;
qb_qk_add_fq_layernorm_grad qb_cuda_add_fq_layernorm_grad;
/* int8_gemm.cu */
qb_qk_quantize_s8 qb_cuda_quantize_s8;
qb_qk_gemm_s8 qb_cuda_gemm_s8;
qb_qk_dequant_s32 qb_cuda_dequant_s32;

#ifdef __cplusplus
}
#endif

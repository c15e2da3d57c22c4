/* kernels.h: the CPU kernels of the quant table (entry types in quant/quant_kernels.h; the table is cpu/kernels.c). */
#pragma once
#include "quant/quant_kernels.h"

/* fake_quant.c */
qb_qk_fake_quant qb_cpu_fake_quant;
qb_qk_fake_quant_grad qb_cpu_fake_quant_grad;
qb_qk_fake_quant_block qb_cpu_fake_quant_block;
qb_qk_fake_quant_mask_rows qb_cpu_fake_quant_mask_rows;
qb_qk_fake_quant_learnable qb_cpu_fake_quant_learnable;
qb_qk_fake_quant_learnable_grad qb_cpu_fake_quant_learnable_grad;
qb_qk_fake_quant_lsq qb_cpu_fake_quant_lsq;
qb_qk_fake_quant_lsq_grad qb_cpu_fake_quant_lsq_grad;
qb_qk_any_negative qb_cpu_any_negative;
/* calib_max.c */
qb_qk_amax_reduce qb_cpu_amax_reduce;
/* calib_histogram.c */
qb_qk_abs_stats qb_cpu_abs_stats;
qb_qk_histogram qb_cpu_histogram;
/* fused.c */
qb_qk_softmax_fq qb_cpu_softmax_fq;
qb_qk_softmax_fq_grad qb_cpu_softmax_fq_grad;
qb_qk_act_fq qb_cpu_act_fq;
qb_qk_act_fq_grad qb_cpu_act_fq_grad;
qb_qk_add_fq_layernorm qb_cpu_add_fq_layernorm;
qb_qk_add_fq_layernorm_grad qb_cpu_add_fq_layernorm_grad;
/* int8_gemm.c */
qb_qk_quantize_s8 qb_cpu_quantize_s8;
qb_qk_gemm_s8 qb_cpu_gemm_s8;
qb_qk_dequant_s32 qb_cpu_dequant_s32;

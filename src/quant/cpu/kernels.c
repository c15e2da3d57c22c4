/* kernels.c: the CPU quant kernel table. */
#include "quant/cpu/kernels.h"

const qb_quant_kernels qb_quant_cpu_kernels = {
    .name = "cpu",
    .fake_quant = qb_cpu_fake_quant,
    .fake_quant_grad = qb_cpu_fake_quant_grad,
    .fake_quant_block = qb_cpu_fake_quant_block,
    .fake_quant_mask_rows = qb_cpu_fake_quant_mask_rows,
    .fake_quant_learnable = qb_cpu_fake_quant_learnable,
    .fake_quant_learnable_grad = qb_cpu_fake_quant_learnable_grad,
    .fake_quant_lsq = qb_cpu_fake_quant_lsq,
    .fake_quant_lsq_grad = qb_cpu_fake_quant_lsq_grad,
    .amax_reduce = qb_cpu_amax_reduce,
    .any_negative = qb_cpu_any_negative,
    .abs_stats = qb_cpu_abs_stats,
    .histogram = qb_cpu_histogram,
    .softmax_fq = qb_cpu_softmax_fq,
    .softmax_fq_grad = qb_cpu_softmax_fq_grad,
    .act_fq = qb_cpu_act_fq,
    .act_fq_grad = qb_cpu_act_fq_grad,
    .add_fq_layernorm = qb_cpu_add_fq_layernorm,
    .add_fq_layernorm_grad = qb_cpu_add_fq_layernorm_grad,
    .quantize_s8 = qb_cpu_quantize_s8,
    .gemm_s8 = qb_cpu_gemm_s8,
    .dequant_s32 = qb_cpu_dequant_s32,
};

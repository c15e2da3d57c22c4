/* dnnl_matmul.h: one oneDNN matmul primitive run on host memory, shared by the CPU's bf16 GEMM (gemm_bf16.c) and the
 * int8 GEMM (quant/cpu/int8_gemm.c). Built only with oneDNN (QB_HAVE_DNNL). */
#pragma once
#ifdef QB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

/* c = a @ b as the memory descriptors say (attr: scales and post-ops, or NULL), executed and waited for; 0 or -1. */
int qb_cpu_dnnl_matmul(const dnnl_memory_desc_t *a_md, const void *a, const dnnl_memory_desc_t *b_md, const void *b,
                       const dnnl_memory_desc_t *c_md, void *c, const_dnnl_primitive_attr_t attr);
#endif

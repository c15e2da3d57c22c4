/* cuda_compat.h: include first in every .cu file. Under nvcc it brings the CUDA runtime, cuBLAS(Lt) and bf16
 * headers; under the CPU emulator (-DQB_CUDA_EMU, meson -Dgpu_emu=true) the emulator header, which serves the same
 * names from test/cuda_emu. Kernels are launched with QB_LAUNCH and take dynamic shared memory with
 * QB_DYNAMIC_SHARED, which both builds spell the same way (docs/cuda.md). */
#pragma once

#ifdef QB_CUDA_EMU
#include "cuda_emu.h"
#else
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

/* kernel<<<grid, block, smem_bytes, stream>>>(args...); a template kernel goes in parentheses: QB_LAUNCH((k<T, 4>), ...) */
#define QB_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
    kernel<<<(grid), (block), (smem_bytes), (stream)>>>(__VA_ARGS__)
/* type *name: the block's dynamic shared memory (16-byte aligned), sized by QB_LAUNCH's smem_bytes */
#define QB_DYNAMIC_SHARED(type, name)                              \
    extern __shared__ __align__(16) unsigned char qb_dynamic_smem_[]; \
    type *name = reinterpret_cast<type *>(qb_dynamic_smem_)
#endif

/* layernorm.cu: layer norm over the last dim, forward and backward (the CPU's cpu/layernorm.c). Forward and input
 * gradient: one warp per row, lanes over the row 4 floats at a time, sums by warp shuffles. Parameter gradients:
 * column tiles x row chunks of partial sums (fixed order, no atomics), then a second pass summing the chunks in order. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_math.cuh"
#include "autograd/cuda/kernels.h"

#define ROW_WARPS 8 /* rows per block of the row kernels */

/* y = (x - mean) * rstd * gamma + beta per row; mean, rstd saved. Two passes in float as the CPU. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    layernorm_forward_kernel(float *__restrict__ y, float *__restrict__ mean, float *__restrict__ rstd, const float *__restrict__ x,
                             const float *__restrict__ gamma, const float *__restrict__ beta, int64_t rows, int64_t h, float eps,
                             bool vec) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *xr = x + r * h;
    float *yr = y + r * h;
    float a[4], s = 0.0f;
    for (int64_t j = lane * 4; j < h; j += 128) {
        qb_load4(a, xr, j, h, vec);
        for (int k = 0; k < 4; k++)
            if (j + k < h) s += a[k];
    }
    float m = qb_warp_sum(s) / (float)h, v = 0.0f;
    for (int64_t j = lane * 4; j < h; j += 128) {
        qb_load4(a, xr, j, h, vec);
        for (int k = 0; k < 4; k++)
            if (j + k < h) v += (a[k] - m) * (a[k] - m);
    }
    float rs = 1.0f / sqrtf(qb_warp_sum(v) / (float)h + eps);
    if (lane == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
    for (int64_t j = lane * 4; j < h; j += 128) {
        float g[4] = {1.0f, 1.0f, 1.0f, 1.0f}, b[4] = {0.0f, 0.0f, 0.0f, 0.0f}, o[4];
        qb_load4(a, xr, j, h, vec);
        if (gamma) qb_load4(g, gamma, j, h, vec);
        if (beta) qb_load4(b, beta, j, h, vec);
        for (int k = 0; k < 4; k++) o[k] = (a[k] - m) * rs * g[k] + b[k];
        qb_store4(yr, o, j, h, vec);
    }
}

/* dx = keep * dx + rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * gamma; dx may be dy's buffer (each lane
 * reads its elements before writing them). */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    layernorm_grad_input_kernel(float *dx, float keep, const float *dy, const float *__restrict__ x, const float *__restrict__ gamma,
                                const float *__restrict__ mean, const float *__restrict__ rstd, int64_t rows, int64_t h, bool vec) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *xr = x + r * h, *dyr = dy + r * h;
    float *dxr = dx + r * h;
    float m = mean[r], rs = rstd[r], sum_dn = 0.0f, sum_dn_n = 0.0f;
    float a[4], d[4], g[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    for (int64_t j = lane * 4; j < h; j += 128) {
        qb_load4(a, xr, j, h, vec);
        qb_load4(d, dyr, j, h, vec);
        if (gamma) qb_load4(g, gamma, j, h, vec);
        for (int k = 0; k < 4; k++) {
            if (j + k >= h) continue;
            float dn = d[k] * g[k];
            sum_dn += dn;
            sum_dn_n += dn * (a[k] - m) * rs;
        }
    }
    float ma = qb_warp_sum(sum_dn) / (float)h, mb = qb_warp_sum(sum_dn_n) / (float)h;
    for (int64_t j = lane * 4; j < h; j += 128) {
        float o[4];
        qb_load4(a, xr, j, h, vec);
        qb_load4(d, dyr, j, h, vec);
        qb_load4(o, dxr, j, h, vec);
        if (gamma) qb_load4(g, gamma, j, h, vec);
        for (int k = 0; k < 4; k++) {
            float dn = d[k] * g[k];
            o[k] = keep * o[k] + rs * (dn - ma - (a[k] - m) * rs * mb);
        }
        qb_store4(dxr, o, j, h, vec);
    }
}

#define GP_COLS 32  /* columns of a parameter-gradient tile (one per lane: a warp reads 128 bytes of a row) */
#define GP_PHASES 8 /* warps of a tile block, each taking every 8th row of the chunk */

/* Partial sums of dy * xhat and dy over rows [chunk * rows_per_chunk, ...) for columns of tile blockIdx.x: into
 * pg/pb[blockIdx.y][j] when given, else added into dg/db (one chunk). The eight phases meet in shared memory and are
 * summed in phase order. */
static __global__ void __launch_bounds__(GP_COLS * GP_PHASES)
    layernorm_grad_params_partial_kernel(float *__restrict__ dg, float *__restrict__ db, float *__restrict__ pg, float *__restrict__ pb,
                                         const float *__restrict__ dy, const float *__restrict__ x, const float *__restrict__ mean,
                                         const float *__restrict__ rstd, int64_t rows, int64_t h, int64_t rows_per_chunk) {
    __shared__ float tile_g[GP_PHASES][GP_COLS], tile_b[GP_PHASES][GP_COLS];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t j = (int64_t)blockIdx.x * GP_COLS + tx;
    int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    float sg = 0.0f, sb = 0.0f;
    if (j < h)
        for (int64_t r = r0 + ty; r < r1; r += GP_PHASES) {
            float d = dy[r * h + j];
            sg += d * (x[r * h + j] - mean[r]) * rstd[r];
            sb += d;
        }
    tile_g[ty][tx] = sg;
    tile_b[ty][tx] = sb;
    __syncthreads();
    if (ty != 0 || j >= h) return;
    for (int p = 1; p < GP_PHASES; p++) {
        sg += tile_g[p][tx];
        sb += tile_b[p][tx];
    }
    if (pg) {
        pg[blockIdx.y * h + j] = sg;
        pb[blockIdx.y * h + j] = sb;
    } else {
        if (dg) dg[j] += sg;
        if (db) db[j] += sb;
    }
}

/* dg[j] += sum over chunks of pg[c][j] (chunk order), db likewise. */
static __global__ void layernorm_grad_params_sum_kernel(float *__restrict__ dg, float *__restrict__ db, const float *__restrict__ pg,
                                                 const float *__restrict__ pb, int64_t h, int64_t chunks) {
    int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= h) return;
    float sg = pg[j], sb = pb[j];
    for (int64_t c = 1; c < chunks; c++) {
        sg += pg[c * h + j];
        sb += pb[c * h + j];
    }
    if (dg) dg[j] += sg;
    if (db) db[j] += sb;
}

static unsigned row_blocks(int64_t rows) { return (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS); }

extern "C" int qb_cuda_layernorm(qb_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                                 int64_t rows, int64_t h, float eps) {
    if (rows <= 0 || h <= 0) return 0;
    bool vec = h % 4 == 0 && qb_aligned16(x) && qb_aligned16(y) && (!gamma || qb_aligned16(gamma)) && (!beta || qb_aligned16(beta));
    QB_LAUNCH(layernorm_forward_kernel, row_blocks(rows), ROW_WARPS * 32, 0, (cudaStream_t)qb_cuda_stream(d), y, mean, rstd, x,
              gamma, beta, rows, h, eps, vec);
    return qb_cuda_status(d, "layernorm", cudaGetLastError());
}

extern "C" int qb_cuda_layernorm_grad_input(qb_dev *d, float *dx, float keep, const float *dy, const float *x, const float *gamma,
                                            const float *mean, const float *rstd, int64_t rows, int64_t h) {
    if (rows <= 0 || h <= 0) return 0;
    bool vec = h % 4 == 0 && qb_aligned16(dx) && qb_aligned16(dy) && qb_aligned16(x) && (!gamma || qb_aligned16(gamma));
    QB_LAUNCH(layernorm_grad_input_kernel, row_blocks(rows), ROW_WARPS * 32, 0, (cudaStream_t)qb_cuda_stream(d), dx, keep, dy, x,
              gamma, mean, rstd, rows, h, vec);
    return qb_cuda_status(d, "layernorm input gradient", cudaGetLastError());
}

/* Row chunks of the parameter gradients: about 1024 blocks in all, at least 64 rows a chunk (a function of the shape
 * only, so that the sums are the same on every device). */
static int64_t grad_param_chunks(int64_t rows, int64_t h) {
    int64_t tiles = (h + GP_COLS - 1) / GP_COLS, chunks = (1024 + tiles - 1) / tiles, by_rows = (rows + 63) / 64;
    return chunks < by_rows ? chunks : by_rows;
}

extern "C" int qb_cuda_layernorm_grad_params(qb_dev *d, float *dg, float *db, const float *dy, const float *x, const float *mean,
                                             const float *rstd, int64_t rows, int64_t h) {
    if (rows <= 0 || h <= 0 || (!dg && !db)) return 0;
    cudaStream_t stream = (cudaStream_t)qb_cuda_stream(d);
    int64_t chunks = grad_param_chunks(rows, h), per_chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + per_chunk - 1) / per_chunk;
    float *pg = nullptr, *pb = nullptr;
    if (chunks > 1) {
        pg = (float *)qb_cuda_scratch(d, 2 * (size_t)chunks * (size_t)h * sizeof(float));
        if (!pg) return -1;
        pb = pg + chunks * h;
    }
    dim3 grid((unsigned)((h + GP_COLS - 1) / GP_COLS), (unsigned)chunks), block(GP_COLS, GP_PHASES);
    QB_LAUNCH(layernorm_grad_params_partial_kernel, grid, block, 0, stream, dg, db, pg, pb, dy, x, mean,
              rstd, rows, h, per_chunk);
    if (chunks > 1 && cudaPeekAtLastError() == cudaSuccess)
        QB_LAUNCH(layernorm_grad_params_sum_kernel, (unsigned)((h + 255) / 256), 256, 0, stream, dg, db,
                  pg, pb, h, chunks);
    return qb_cuda_status(d, "layernorm parameter gradients", cudaGetLastError());
}

/* embedding.cu: embedding lookup and its deterministic scatter-add gradient (the CPU's cpu/embedding.c).
 *
 * Forward: one block per id, threads over the row 4 floats at a time.
 * Gradient, in three steps, none of which depends on the order of threads or blocks:
 * 1. a stable LSD radix sort of the ids (4 passes of 8 bits: per-tile digit counts, one exclusive scan, a stable
 *    scatter ranked inside each tile), giving the ids in order and, for each, its positions in increasing order;
 * 2. windows of 32 sorted positions: an id whose positions all lie in one window is added into its row there, starting
 *    from the row's value and adding dy rows in position order (the CPU's sums, bit for bit); an id cut by a window
 *    edge leaves one partial sum per window (in position order) in scratch;
 * 3. each cut id is finished by the window where it starts: its row plus its window partials in window order.
 * Ids equal to padding_idx get nothing. Scratch (qb_cuda_scratch): 4 n ints of sort buffers, 256 ints per tile of 256
 * ids for the digit counts, and 2 h floats per window for the partials. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_math.cuh"
#include "autograd/cuda/kernels.h"

#define SORT_TILE 256  /* ids a block of the radix passes ranks */
#define SORT_DIGITS 256
#define SCAN_THREADS 1024
#define GRAD_WINDOW 32 /* sorted positions a window sums */
#define GRAD_COLS 128  /* columns of a window block */
static_assert(SORT_TILE == SORT_DIGITS, "a count block writes one digit a thread");

static __global__ void embedding_forward_kernel(float *__restrict__ y, const float *__restrict__ weight, const int32_t *__restrict__ ids,
                                         int64_t h, bool vec) {
    int64_t t = blockIdx.x;
    const float *src = weight + (int64_t)ids[t] * h;
    float *dst = y + t * h, a[4];
    for (int64_t j = (int64_t)threadIdx.x * 4; j < h; j += (int64_t)blockDim.x * 4) {
        qb_load4(a, src, j, h, vec);
        qb_store4(dst, a, j, h, vec);
    }
}

/* counts[digit * tiles + tile] = ids of the tile with that digit (shared-memory integer atomics: order-free). */
static __global__ void __launch_bounds__(SORT_TILE) radix_count_kernel(int *__restrict__ counts, const int32_t *__restrict__ keys, int64_t n,
                                                                int shift, int64_t tiles) {
    __shared__ int count[SORT_DIGITS];
    int i = threadIdx.x;
    count[i] = 0;
    __syncthreads();
    int64_t k = (int64_t)blockIdx.x * SORT_TILE + i;
    if (k < n) atomicAdd(&count[((uint32_t)keys[k] >> shift) & 255u], 1);
    __syncthreads();
    counts[(int64_t)i * tiles + blockIdx.x] = count[i];
}

/* a[0..m) = its exclusive prefix sums: one block, each thread a contiguous run, the run totals scanned by shuffles. */
static __global__ void __launch_bounds__(SCAN_THREADS) exclusive_scan_kernel(int *a, int64_t m) {
    __shared__ int warp_total[SCAN_THREADS / 32];
    int t = threadIdx.x, lane = t & 31, w = t >> 5;
    int64_t per = (m + SCAN_THREADS - 1) / SCAN_THREADS, b0 = t * per, b1 = b0 + per < m ? b0 + per : m;
    int run = 0;
    for (int64_t i = b0; i < b1; i++) run += a[i];
    int incl = run;
    for (int o = 1; o < 32; o <<= 1) {
        int u = __shfl_up_sync(QB_FULL_MASK, incl, o);
        if (lane >= o) incl += u;
    }
    if (lane == 31) warp_total[w] = incl;
    __syncthreads();
    if (w == 0) {
        int v = warp_total[lane];
        for (int o = 1; o < 32; o <<= 1) {
            int u = __shfl_up_sync(QB_FULL_MASK, v, o);
            if (lane >= o) v += u;
        }
        warp_total[lane] = v;
    }
    __syncthreads();
    int prefix = incl - run + (w > 0 ? warp_total[w - 1] : 0);
    for (int64_t i = b0; i < b1; i++) {
        int c = a[i];
        a[i] = prefix;
        prefix += c;
    }
}

/* One stable pass: id k of tile b goes to offsets[digit * tiles + b] + (ids of the tile before k with its digit); its
 * value (vin, or k itself in the first pass) goes with it. */
static __global__ void __launch_bounds__(SORT_TILE)
    radix_scatter_kernel(int32_t *__restrict__ kout, int32_t *__restrict__ vout, const int32_t *__restrict__ kin,
                         const int32_t *__restrict__ vin, const int *__restrict__ offsets, int64_t n, int shift, int64_t tiles) {
    __shared__ int digit[SORT_TILE];
    int i = threadIdx.x;
    int64_t k = (int64_t)blockIdx.x * SORT_TILE + i;
    int32_t key = 0, val = 0;
    int dg = SORT_DIGITS; /* past the end: matches nobody */
    if (k < n) {
        key = kin[k];
        val = vin ? vin[k] : (int32_t)k;
        dg = (int)(((uint32_t)key >> shift) & 255u);
    }
    digit[i] = dg;
    __syncthreads();
    if (k >= n) return;
    int rank = 0;
    for (int q = 0; q < i; q++) rank += digit[q] == dg;
    int64_t pos = offsets[(int64_t)dg * tiles + blockIdx.x] + rank;
    kout[pos] = key;
    vout[pos] = val;
}

/* Step 2 for window blockIdx.x of the sorted ids sid (positions spos), columns of blockIdx.y. part[(w * 2 + s) * h + j]:
 * slot 0 the window's first id when cut, slot 1 its last when cut (and not also the first). */
static __global__ void __launch_bounds__(GRAD_COLS)
    embedding_grad_window_kernel(float *__restrict__ g, float *__restrict__ part, const float *__restrict__ dy,
                                 const int32_t *__restrict__ sid, const int32_t *__restrict__ spos, int64_t n, int64_t h, int64_t pad) {
    __shared__ int32_t ids[GRAD_WINDOW + 2]; /* ids[0]: the id before the window, ids[cnt + 1]: the one after (-1: none) */
    __shared__ int32_t pos[GRAD_WINDOW];
    int t = threadIdx.x;
    int64_t w0 = (int64_t)blockIdx.x * GRAD_WINDOW;
    int cnt = n - w0 < GRAD_WINDOW ? (int)(n - w0) : GRAD_WINDOW;
    if (t < cnt) {
        ids[t + 1] = sid[w0 + t];
        pos[t] = spos[w0 + t];
    } else if (t == GRAD_WINDOW) {
        ids[0] = w0 > 0 ? sid[w0 - 1] : -1;
    } else if (t == GRAD_WINDOW + 1) {
        ids[cnt + 1] = w0 + cnt < n ? sid[w0 + cnt] : -1;
    }
    __syncthreads();
    int64_t j = (int64_t)blockIdx.y * GRAD_COLS + t;
    if (j >= h) return;
    for (int a = 0; a < cnt;) {
        int32_t id = ids[a + 1];
        int b = a + 1;
        while (b < cnt && ids[b + 1] == id) b++;
        bool cut = (a == 0 && ids[0] == id) || (b == cnt && ids[cnt + 1] == id);
        if (id != pad) {
            float *row = g + (int64_t)id * h;
            float acc = cut ? dy[(int64_t)pos[a] * h + j] : row[j] + dy[(int64_t)pos[a] * h + j];
            for (int q = a + 1; q < b; q++) acc += dy[(int64_t)pos[q] * h + j];
            if (cut)
                part[((int64_t)blockIdx.x * 2 + (a == 0 ? 0 : 1)) * h + j] = acc;
            else
                row[j] = acc;
        }
        a = b;
    }
}

/* Step 3: window blockIdx.x finishes the id cut at its end when the id starts in it. */
static __global__ void __launch_bounds__(GRAD_COLS)
    embedding_grad_combine_kernel(float *__restrict__ g, const float *__restrict__ part, const int32_t *__restrict__ sid, int64_t n,
                                  int64_t h, int64_t pad) {
    int64_t w = blockIdx.x, w0 = w * GRAD_WINDOW, w1 = w0 + GRAD_WINDOW;
    if (w1 >= n) return;
    int32_t id = sid[w1 - 1];
    if (sid[w1] != id || id == pad) return;
    bool whole = sid[w0] == id; /* the id fills the window: it starts here unless it was there before */
    if (whole && w0 > 0 && sid[w0 - 1] == id) return;
    int64_t lo = w1, hi = n; /* the id's end: first sorted position past w1 holding a larger id */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sid[mid] <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t last = (lo - 1) / GRAD_WINDOW, j = (int64_t)blockIdx.y * GRAD_COLS + threadIdx.x;
    if (j >= h) return;
    float *row = g + (int64_t)id * h;
    float acc = row[j] + part[(w * 2 + (whole ? 0 : 1)) * h + j];
    for (int64_t v = w + 1; v <= last; v++) acc += part[v * 2 * h + j];
    row[j] = acc;
}

extern "C" int qb_cuda_embedding(qb_dev *d, float *y, const float *weight, const int32_t *ids, int64_t n_ids, int64_t h) {
    if (n_ids <= 0 || h <= 0) return 0;
    if (n_ids > INT32_MAX) return qb_cuda_status(d, "embedding: more than 2^31 - 1 ids", cudaErrorInvalidValue);
    bool vec = h % 4 == 0 && qb_aligned16(y) && qb_aligned16(weight);
    int64_t threads = ((h + 3) / 4 + 31) / 32 * 32;
    threads = threads < 256 ? threads : 256;
    QB_LAUNCH(embedding_forward_kernel, (unsigned)n_ids, (unsigned)threads, 0, (cudaStream_t)qb_cuda_stream(d), y, weight, ids, h, vec);
    return qb_cuda_status(d, "embedding", cudaGetLastError());
}

static size_t round256(size_t bytes) { return (bytes + 255) / 256 * 256; }

extern "C" int qb_cuda_embedding_grad(qb_dev *d, float *dweight, const float *dy, const int32_t *ids, int64_t n_ids, int64_t h,
                                      int64_t padding_idx) {
    if (n_ids <= 0 || h <= 0) return 0;
    if (n_ids > INT32_MAX) return qb_cuda_status(d, "embedding gradient: more than 2^31 - 1 ids", cudaErrorInvalidValue);
    cudaStream_t stream = (cudaStream_t)qb_cuda_stream(d);
    int64_t n = n_ids, tiles = (n + SORT_TILE - 1) / SORT_TILE, windows = (n + GRAD_WINDOW - 1) / GRAD_WINDOW;
    size_t sort_bytes = round256((size_t)n * sizeof(int32_t)), count_bytes = round256((size_t)(SORT_DIGITS * tiles) * sizeof(int));
    size_t part_bytes = (size_t)(2 * windows * h) * sizeof(float);
    char *scratch = (char *)qb_cuda_scratch(d, 4 * sort_bytes + count_bytes + part_bytes);
    if (!scratch) return -1;
    int32_t *keys[2] = {(int32_t *)scratch, (int32_t *)(scratch + sort_bytes)};
    int32_t *vals[2] = {(int32_t *)(scratch + 2 * sort_bytes), (int32_t *)(scratch + 3 * sort_bytes)};
    int *counts = (int *)(scratch + 4 * sort_bytes);
    float *part = (float *)(scratch + 4 * sort_bytes + count_bytes);
    const int32_t *kin = ids, *vin = nullptr;
    for (int pass = 0; pass < 4; pass++) {
        int shift = 8 * pass;
        QB_LAUNCH(radix_count_kernel, (unsigned)tiles, SORT_TILE, 0, stream, counts, kin, n, shift, tiles);
        QB_LAUNCH(exclusive_scan_kernel, 1, SCAN_THREADS, 0, stream, counts, SORT_DIGITS * tiles);
        QB_LAUNCH(radix_scatter_kernel, (unsigned)tiles, SORT_TILE, 0, stream, keys[pass & 1], vals[pass & 1], kin, vin, counts, n, shift,
                  tiles);
        kin = keys[pass & 1];
        vin = vals[pass & 1];
    }
    dim3 grid((unsigned)windows, (unsigned)((h + GRAD_COLS - 1) / GRAD_COLS));
    QB_LAUNCH(embedding_grad_window_kernel, grid, GRAD_COLS, 0, stream, dweight, part, dy, kin, vin, n, h, padding_idx);
    QB_LAUNCH(embedding_grad_combine_kernel, grid, GRAD_COLS, 0, stream, dweight, part, kin, n, h, padding_idx);
    return qb_cuda_status(d, "embedding gradient", cudaGetLastError());
}

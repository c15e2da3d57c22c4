/* cuda_emu.h: the CUDA execution model on the CPU, for tests (docs/cuda.md). A .cu file compiled by g++ with
 * -DQB_CUDA_EMU gets this header through src/autograd/cuda/cuda_compat.h. The host API (cudart, cuBLAS, cuBLASLt
 * types, enums and prototypes) comes from the real CUDA headers, which g++ can read; emu_runtime.cpp and
 * emu_cublas.cpp implement the subset docs/cuda.md lists. This header adds what only nvcc knows: the keywords,
 * threadIdx & co., __syncthreads, warp shuffles and votes, atomics, intrinsics and the launch (QB_LAUNCH).
 * Blocks run one after another; the threads of a block are fibers on one OS thread that switch only at
 * __syncthreads and at warp operations, in an order shuffled from QB_CUDA_EMU_SEED. */
#pragma once
#ifndef QB_CUDA_EMU
#error "cuda_emu.h is the CUDA emulator: compile with -DQB_CUDA_EMU (meson -Dgpu_emu=true)"
#endif

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- keywords: the CUDA headers define __global__, __device__, __host__, __constant__ empty for g++ */
#undef __shared__
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* Static shared memory is a function-local static (blocks run one at a time, so one instance serves every block).
 * Outside templates it lands in the section qbemu_shared, which the runtime poisons at each block start. The name
 * carries assembler flags and a comment (#n) so that gcc sees one distinct section per variable (no "section type
 * conflict" between inline and non-inline functions) while gas puts all of them into one. GCC 12 ignores section
 * attributes inside templates: there static shared memory is not poisoned (docs/cuda.md). */
#define QBEMU_STR2(x) #x
#define QBEMU_STR(x) QBEMU_STR2(x)
#define __shared__ static __attribute__((section("qbemu_shared,\"aw\",@progbits#" QBEMU_STR(__COUNTER__)), aligned(16)))
#else
#define __shared__ static __attribute__((aligned(16)))
#endif
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __grid_constant__
#define __grid_constant__
#endif

namespace qbemu {

/* State of the running thread (a fiber); nullptr outside a kernel. */
struct ThreadCtx {
    uint3 tid;
};
extern ThreadCtx *g_thread;
extern uint3 g_block_idx;
extern dim3 g_block_dim, g_grid_dim;
extern unsigned char *g_dynamic_smem;

/* Aborts: `what` is device-only and was used outside a kernel. */
[[noreturn]] void device_only(const char *what);
/* Prints the message (with the running kernel, block and thread) and aborts: a kernel bug such as a deadlock. */
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line "qb_cuda_emu: ..." on stderr: why a call failed. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
inline const uint3 &thread_idx() {
    if (!g_thread) device_only("threadIdx");
    return g_thread->tid;
}
inline const uint3 &block_idx() {
    if (!g_thread) device_only("blockIdx");
    return g_block_idx;
}
inline const dim3 &block_dim() {
    if (!g_thread) device_only("blockDim");
    return g_block_dim;
}
inline const dim3 &grid_dim() {
    if (!g_thread) device_only("gridDim");
    return g_grid_dim;
}
inline unsigned char *dynamic_smem() {
    if (!g_thread) device_only("dynamic shared memory");
    return g_dynamic_smem;
}

/* Block barrier: kind 0 plain, 1 count, 2 and, 3 or; returns the reduction of pred over the block. */
int barrier(int kind, int pred);
/* Warp operations: the caller waits until every live lane of mask has arrived at the same operation. */
enum WarpOp { WOP_SYNC, WOP_IDX, WOP_UP, WOP_DOWN, WOP_XOR, WOP_BALLOT, WOP_ANY, WOP_ALL, WOP_REDUCE_ADD,
              WOP_REDUCE_MIN, WOP_REDUCE_MAX, WOP_REDUCE_UMIN, WOP_REDUCE_UMAX };
uint64_t warp_op(int op, unsigned mask, uint64_t value, int arg, int width);
unsigned active_mask();

/* Launch support (emu_runtime.cpp). */
int check_kernel_pointer(const void *p, const char *kernel, int index);
void launch(const char *name, const void *fn, dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t stream,
            void (*body)(void *), void *ctx, int bad_args);
/* Overrides QB_CUDA_EMU_SEED for later launches (tests); 0 runs threads in index order. */
void set_seed(uint64_t seed);
uint64_t seed();

template <class T>
inline int check_arg(const T &v, const char *kernel, int index) {
    if constexpr (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>)
        return check_kernel_pointer((const void *)v, kernel, index);
    else
        return 0;
}

template <class... P>
struct Launcher {
    const char *name;
    void (*fn)(P...);
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;

    using Args = std::tuple<std::decay_t<P>...>;
    struct Ctx {
        void (*fn)(P...);
        Args *args;
    };
    static void body(void *c) {
        Ctx *ctx = static_cast<Ctx *>(c);
        std::apply(ctx->fn, *ctx->args); /* each thread gets its own copies of the by-value parameters */
    }
    template <class Tuple, size_t... I>
    static int check_all(const Tuple &t, const char *name, std::index_sequence<I...>) {
        (void)t, (void)name; /* a kernel without parameters */
        return (0 + ... + check_arg(std::get<I>(t), name, (int)I + 1));
    }
    template <class... A>
    void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "QB_LAUNCH: wrong number of kernel arguments");
        Args args(std::forward<A>(a)...);
        int bad = check_all(args, name, std::index_sequence_for<P...>{});
        Ctx ctx{fn, &args};
        launch(name, (const void *)fn, grid, block, smem, stream, &body, &ctx, bad);
    }
};

template <class... P>
inline Launcher<P...> make_launcher(const char *name, void (*fn)(P...), dim3 grid, dim3 block, size_t smem,
                                    cudaStream_t stream) {
    return Launcher<P...>{name, fn, grid, block, smem, stream};
}

template <class T>
inline uint64_t to_bits(T v) {
    static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, long> ||
                      std::is_same_v<T, unsigned long> || std::is_same_v<T, long long> ||
                      std::is_same_v<T, unsigned long long> || std::is_same_v<T, float> ||
                      std::is_same_v<T, double> || std::is_same_v<T, __half> || std::is_same_v<T, __half2> ||
                      std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __nv_bfloat162>,
                  "warp shuffles take the types CUDA's __shfl_*_sync take");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    return b;
}
template <class T>
inline T from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}

} /* namespace qbemu */

/* ---- built-in variables */
#define threadIdx (::qbemu::thread_idx())
#define blockIdx (::qbemu::block_idx())
#define blockDim (::qbemu::block_dim())
#define gridDim (::qbemu::grid_dim())
inline constexpr int warpSize = 32;

/* ---- launch and dynamic shared memory (cuda_compat.h defines the nvcc forms) */
#define QB_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
    ::qbemu::make_launcher(#kernel, kernel, dim3(grid), dim3(block), (size_t)(smem_bytes), (stream))(__VA_ARGS__)
#define QB_DYNAMIC_SHARED(type, name) type *name = reinterpret_cast<type *>(::qbemu::dynamic_smem())

/* ---- the C++ overloads cuda_runtime.h declares only for nvcc (__CUDACC__) */
template <class T>
inline cudaError_t cudaMemcpyToSymbol(const T &symbol, const void *src, size_t count, size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    return ::cudaMemcpyToSymbol((const void *)&symbol, src, count, offset, kind);
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t count, size_t offset = 0,
                                        cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
    return ::cudaMemcpyFromSymbol(dst, (const void *)&symbol, count, offset, kind);
}
template <class T>
inline cudaError_t cudaFuncSetAttribute(T *entry, cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute((const void *)entry, attr, value);
}

/* ---- synchronisation */
inline void __syncthreads() { ::qbemu::barrier(0, 0); }
inline int __syncthreads_count(int pred) { return ::qbemu::barrier(1, pred); }
inline int __syncthreads_and(int pred) { return ::qbemu::barrier(2, pred); }
inline int __syncthreads_or(int pred) { return ::qbemu::barrier(3, pred); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::qbemu::warp_op(::qbemu::WOP_SYNC, mask, 0, 0, 32); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
inline unsigned __activemask() { return ::qbemu::active_mask(); }
[[noreturn]] inline void __trap() { ::qbemu::fatal("__trap() called in a kernel"); }

/* ---- warp shuffles and votes */
template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    return ::qbemu::from_bits<T>(::qbemu::warp_op(::qbemu::WOP_IDX, mask, ::qbemu::to_bits(var), src_lane, width));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return ::qbemu::from_bits<T>(::qbemu::warp_op(::qbemu::WOP_UP, mask, ::qbemu::to_bits(var), (int)delta, width));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return ::qbemu::from_bits<T>(
        ::qbemu::warp_op(::qbemu::WOP_DOWN, mask, ::qbemu::to_bits(var), (int)delta, width));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    return ::qbemu::from_bits<T>(::qbemu::warp_op(::qbemu::WOP_XOR, mask, ::qbemu::to_bits(var), lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)::qbemu::warp_op(::qbemu::WOP_BALLOT, mask, pred != 0, 0, 32);
}
inline int __any_sync(unsigned mask, int pred) { return (int)::qbemu::warp_op(::qbemu::WOP_ANY, mask, pred != 0, 0, 32); }
inline int __all_sync(unsigned mask, int pred) { return (int)::qbemu::warp_op(::qbemu::WOP_ALL, mask, pred != 0, 0, 32); }
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) {
    return (unsigned)::qbemu::warp_op(::qbemu::WOP_REDUCE_ADD, mask, v, 0, 32);
}
inline int __reduce_add_sync(unsigned mask, int v) {
    return (int)::qbemu::warp_op(::qbemu::WOP_REDUCE_ADD, mask, (unsigned)v, 0, 32);
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) {
    return (unsigned)::qbemu::warp_op(::qbemu::WOP_REDUCE_UMIN, mask, v, 0, 32);
}
inline int __reduce_min_sync(unsigned mask, int v) {
    return (int)::qbemu::warp_op(::qbemu::WOP_REDUCE_MIN, mask, (unsigned)v, 0, 32);
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) {
    return (unsigned)::qbemu::warp_op(::qbemu::WOP_REDUCE_UMAX, mask, v, 0, 32);
}
inline int __reduce_max_sync(unsigned mask, int v) {
    return (int)::qbemu::warp_op(::qbemu::WOP_REDUCE_MAX, mask, (unsigned)v, 0, 32);
}

/* ---- atomics: fibers run on one OS thread and switch only at barriers, so plain read-modify-writes are atomic */
#define QBEMU_ATOMIC(name, T, expr) \
    inline T name(T *address, T val) { T old = *address; *address = (expr); return old; }
QBEMU_ATOMIC(atomicAdd, int, old + val)
QBEMU_ATOMIC(atomicAdd, unsigned, old + val)
QBEMU_ATOMIC(atomicAdd, unsigned long long, old + val)
QBEMU_ATOMIC(atomicAdd, float, old + val)
QBEMU_ATOMIC(atomicAdd, double, old + val)
QBEMU_ATOMIC(atomicAdd, __nv_bfloat16, __float2bfloat16(__bfloat162float(old) + __bfloat162float(val)))
QBEMU_ATOMIC(atomicSub, int, old - val)
QBEMU_ATOMIC(atomicSub, unsigned, old - val)
QBEMU_ATOMIC(atomicExch, int, val)
QBEMU_ATOMIC(atomicExch, unsigned, val)
QBEMU_ATOMIC(atomicExch, unsigned long long, val)
QBEMU_ATOMIC(atomicExch, float, val)
QBEMU_ATOMIC(atomicMax, int, old > val ? old : val)
QBEMU_ATOMIC(atomicMax, unsigned, old > val ? old : val)
QBEMU_ATOMIC(atomicMax, long long, old > val ? old : val)
QBEMU_ATOMIC(atomicMax, unsigned long long, old > val ? old : val)
QBEMU_ATOMIC(atomicMin, int, old < val ? old : val)
QBEMU_ATOMIC(atomicMin, unsigned, old < val ? old : val)
QBEMU_ATOMIC(atomicMin, long long, old < val ? old : val)
QBEMU_ATOMIC(atomicMin, unsigned long long, old < val ? old : val)
QBEMU_ATOMIC(atomicAnd, int, old & val)
QBEMU_ATOMIC(atomicAnd, unsigned, old & val)
QBEMU_ATOMIC(atomicAnd, unsigned long long, old & val)
QBEMU_ATOMIC(atomicOr, int, old | val)
QBEMU_ATOMIC(atomicOr, unsigned, old | val)
QBEMU_ATOMIC(atomicOr, unsigned long long, old | val)
QBEMU_ATOMIC(atomicXor, int, old ^ val)
QBEMU_ATOMIC(atomicXor, unsigned, old ^ val)
QBEMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
QBEMU_ATOMIC(atomicInc, unsigned, old >= val ? 0u : old + 1u)
QBEMU_ATOMIC(atomicDec, unsigned, (old == 0u || old > val) ? val : old - 1u)
#undef QBEMU_ATOMIC
#define QBEMU_ATOMIC_CAS(T) \
    inline T atomicCAS(T *address, T compare, T val) { T old = *address; if (old == compare) *address = val; return old; }
QBEMU_ATOMIC_CAS(int)
QBEMU_ATOMIC_CAS(unsigned)
QBEMU_ATOMIC_CAS(unsigned long long)
QBEMU_ATOMIC_CAS(unsigned short)
#undef QBEMU_ATOMIC_CAS

/* ---- intrinsics. Fast-math ones (__expf, __fdividef, ...) use the precise libm function: the GPU's approximations
 * differ in the last bits, so compare such kernels with a tolerance. */
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
/* float -> int conversions saturate and map NaN to 0, as the cvt instruction does */
inline int qbemu_f2i(float r) {
    return r != r ? 0 : r >= 2147483648.0f ? 2147483647 : r < -2147483648.0f ? (-2147483647 - 1) : (int)r;
}
inline int __float2int_rn(float x) { return qbemu_f2i(nearbyintf(x)); }
inline int __float2int_rz(float x) { return qbemu_f2i(truncf(x)); }
inline int __float2int_rd(float x) { return qbemu_f2i(floorf(x)); }
inline int __float2int_ru(float x) { return qbemu_f2i(ceilf(x)); }
inline unsigned __float2uint_rn(float x) {
    float r = nearbyintf(x);
    return r != r || r <= 0.0f ? 0u : r >= 4294967296.0f ? 4294967295u : (unsigned)r;
}
inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline float __uint2float_rn(unsigned x) { return (float)x; }
inline float __ll2float_rn(long long x) { return (float)x; }
inline int __double2int_rn(double x) { return (int)nearbyint(x); }
inline float __double2float_rn(double x) { return (float)x; }
inline int __float_as_int(float x) { int r; std::memcpy(&r, &x, 4); return r; }
inline float __int_as_float(int x) { float r; std::memcpy(&r, &x, 4); return r; }
inline unsigned __float_as_uint(float x) { unsigned r; std::memcpy(&r, &x, 4); return r; }
inline float __uint_as_float(unsigned x) { float r; std::memcpy(&r, &x, 4); return r; }
inline long long __double_as_longlong(double x) { long long r; std::memcpy(&r, &x, 8); return r; }
inline double __longlong_as_double(long long x) { double r; std::memcpy(&r, &x, 8); return r; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <class T>
inline T __ldg(const T *p) { return *p; }
template <class T>
inline T __ldcs(const T *p) { return *p; }
template <class T>
inline void __stcs(T *p, T v) { *p = v; }
long long clock64();

/* min/max as CUDA's math headers declare them for device code */
#define QBEMU_MINMAX(T) \
    inline T min(T a, T b) { return a < b ? a : b; } \
    inline T max(T a, T b) { return a > b ? a : b; }
QBEMU_MINMAX(int)
QBEMU_MINMAX(unsigned)
QBEMU_MINMAX(long)
QBEMU_MINMAX(unsigned long)
QBEMU_MINMAX(long long)
QBEMU_MINMAX(unsigned long long)
#undef QBEMU_MINMAX
#define QBEMU_MINMAX_MIXED(S, U) \
    inline U min(S a, U b) { return min((U)a, b); } \
    inline U min(U a, S b) { return min(a, (U)b); } \
    inline U max(S a, U b) { return max((U)a, b); } \
    inline U max(U a, S b) { return max(a, (U)b); }
QBEMU_MINMAX_MIXED(int, unsigned)
QBEMU_MINMAX_MIXED(long, unsigned long)
QBEMU_MINMAX_MIXED(long long, unsigned long long)
#undef QBEMU_MINMAX_MIXED
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

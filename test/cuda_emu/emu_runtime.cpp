/* emu_runtime.cpp: the CUDA emulator's scheduler (fibers, barriers, warp operations, launches) and the cudart subset
 * it serves on host memory (docs/cuda.md). One kernel runs at a time in the whole process (g_mutex); its blocks run
 * one after another and the threads of a block are fibers on the launching OS thread. */
#include "cuda_emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define QBEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QBEMU_ASAN 1
#endif
#endif
#ifdef QBEMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace qbemu {

ThreadCtx *g_thread;
uint3 g_block_idx;
dim3 g_block_dim, g_grid_dim;
unsigned char *g_dynamic_smem;

namespace {

/* ---- settings from the environment (read once) */
struct Settings {
    uint64_t seed = 0;
    bool have_device = true;
    int devices = 1; /* QB_CUDA_EMU_DEVICES: 0 (none) to 8; every one is the same card over the one memory table */
    size_t stack_bytes = 256 * 1024;
};
Settings g_cfg;
std::once_flag g_cfg_once;
void read_settings() {
    std::call_once(g_cfg_once, [] {
        if (const char *s = getenv("QB_CUDA_EMU_SEED")) g_cfg.seed = strtoull(s, nullptr, 0);
        if (const char *s = getenv("QB_CUDA_EMU_DEVICES")) {
            int n = atoi(s);
            g_cfg.devices = n < 0 ? 0 : n > 8 ? 8 : n;
            g_cfg.have_device = g_cfg.devices != 0;
        }
        if (const char *s = getenv("QB_CUDA_EMU_STACK_KB")) {
            long kb = atol(s);
            if (kb >= 16) g_cfg.stack_bytes = (size_t)kb * 1024;
        }
    });
}

std::mutex g_mutex;          /* memory table, streams, events, launches */
std::thread::id g_kernel_os_thread;
const char *g_kernel_name = "";
cudaError_t g_last_error = cudaSuccess;

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) g_last_error = e;
    return e;
}

/* ---- shuffling: splitmix64 from the seed, advanced by every shuffled round */
uint64_t g_rng;
bool g_rng_seeded;
uint64_t next_random() {
    if (!g_rng_seeded) {
        g_rng = g_cfg.seed * 0x9e3779b97f4a7c15ull;
        g_rng_seeded = true;
    }
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- fibers. x86-64: a hand-written switch that pushes the callee-saved registers on the old stack and swaps stack
 * pointers (16 instructions, no syscall). It leaves through pop + indirect jmp, not ret: a ret to the other stack
 * always misses the return-stack predictor (17 ns a switch here, 6 ns with the jmp). The MXCSR and x87 control
 * words are not switched: nothing in a kernel changes them, and fldcw cost more than the rest. Elsewhere: ucontext. */
#if defined(__x86_64__)
extern "C" void qbemu_switch(void **save_sp, void *next_sp);
asm(R"(
    .text
    .p2align 4
    .globl qbemu_switch
    .hidden qbemu_switch
    .type qbemu_switch, @function
qbemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    popq %rax
    jmp *%rax
    .size qbemu_switch, .-qbemu_switch
)");
#endif

enum { RUNNABLE, AT_BARRIER, AT_WARP, DONE };

struct Fiber : ThreadCtx {
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t uc;
#endif
    unsigned char *stack_lo;
    size_t stack_size;
    void *fake_stack; /* ASan's fake stack while switched out */
    unsigned linear, lane, warp;
    int state;
    int bar_pred;
    int wop, warg, wwidth;
    unsigned wmask;
    uint64_t wval, wres;
};

struct Warp {
    unsigned live;    /* lanes that exist and have not exited */
    unsigned waiting; /* lanes waiting in a warp operation */
};

struct Block {
    unsigned nthreads, live, at_barrier, bar_count, bar_participants;
    Warp warps[32];
};

std::vector<Fiber *> g_fibers;
std::vector<unsigned> g_order;
Block g_blk;
void (*g_body)(void *);
void *g_body_ctx;
#if defined(__x86_64__)
void *g_sched_sp;
#else
ucontext_t g_sched_uc;
#endif
void *g_sched_fake;
const void *g_sched_lo;
size_t g_sched_size;

inline void asan_start(void **fake, const void *lo, size_t size) {
#ifdef QBEMU_ASAN
    __sanitizer_start_switch_fiber(fake, lo, size);
#else
    (void)fake, (void)lo, (void)size;
#endif
}
inline void asan_finish(void *fake, const void **lo, size_t *size) {
#ifdef QBEMU_ASAN
    __sanitizer_finish_switch_fiber(fake, lo, size);
#else
    (void)fake, (void)lo, (void)size;
#endif
}

/* scheduler -> fiber */
inline void resume(Fiber *f) {
    g_thread = f;
    asan_start(&g_sched_fake, f->stack_lo, f->stack_size);
#if defined(__x86_64__)
    qbemu_switch(&g_sched_sp, f->sp);
#else
    swapcontext(&g_sched_uc, &f->uc);
#endif
    asan_finish(g_sched_fake, nullptr, nullptr);
}

/* fiber -> scheduler; returns when the scheduler resumes this fiber */
inline void yield(Fiber *f) {
    asan_start(&f->fake_stack, g_sched_lo, g_sched_size);
#if defined(__x86_64__)
    qbemu_switch(&f->sp, g_sched_sp);
#else
    swapcontext(&f->uc, &g_sched_uc);
#endif
    asan_finish(f->fake_stack, &g_sched_lo, &g_sched_size);
}

/* Every fiber runs this loop for its whole life: one kernel thread per turn, then back to the scheduler. */
[[noreturn]] void fiber_main() {
    asan_finish(nullptr, &g_sched_lo, &g_sched_size);
    for (;;) {
        Fiber *f = static_cast<Fiber *>(g_thread);
        g_body(g_body_ctx);
        f->state = DONE;
        yield(f);
    }
}

Fiber *new_fiber() {
    /* One mapping per fiber: a guard page (an overflow faults), then the stack, with the Fiber in the stack's top
     * cache lines (one page holds both). Fiber and stack top move by one cache line per fiber: at one page offset all
     * of them would share one L1 set. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (g_cfg.stack_bytes + page - 1) & ~(page - 1);
    void *base = mmap(nullptr, page + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    mprotect(base, page, PROT_NONE);
    unsigned char *lo = (unsigned char *)base + page;
    size_t color = (g_fibers.size() % 32) * 64;
    size_t fiber_at = (size - sizeof(Fiber) - color) & ~(size_t)63;
    Fiber *f = new (lo + fiber_at) Fiber();
    f->stack_lo = lo;
    f->stack_size = fiber_at;
#if defined(__x86_64__)
    /* Initial frame, as qbemu_switch leaves one: r15..rbx and rbp = 0 (ends frame-pointer walks), return address
     * fiber_main, and a zero return address above it so that fiber_main starts with the stack alignment of a call. */
    uint64_t *top = (uint64_t *)(f->stack_lo + f->stack_size);
    top[-1] = 0;
    top[-2] = (uint64_t)(uintptr_t)&fiber_main;
    for (int i = 3; i <= 8; i++) top[-i] = 0;
    f->sp = &top[-8];
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack_lo;
    f->uc.uc_stack.ss_size = f->stack_size;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, (void (*)())fiber_main, 0);
#endif
    return f;
}

/* Fibers are made once and kept (mapped) for the life of the process: their stacks hold fiber_main's frame. */
bool ensure_fibers(unsigned n) {
    while (g_fibers.size() < n) {
        Fiber *f = new_fiber();
        if (!f) return false;
        g_fibers.push_back(f);
    }
    return true;
}

const char *wop_name(int op) {
    switch (op) {
    case WOP_SYNC: return "__syncwarp";
    case WOP_IDX: return "__shfl_sync";
    case WOP_UP: return "__shfl_up_sync";
    case WOP_DOWN: return "__shfl_down_sync";
    case WOP_XOR: return "__shfl_xor_sync";
    case WOP_BALLOT: return "__ballot_sync";
    case WOP_ANY: return "__any_sync";
    case WOP_ALL: return "__all_sync";
    default: return "__reduce_*_sync";
    }
}

Fiber *current(const char *what) {
    if (!g_thread) device_only(what);
    return static_cast<Fiber *>(g_thread);
}

const uint64_t POISON = ~0ull; /* a shuffle from a lane that is not taking part: all ones (NaN as float) */

/* Shuffle source lane as the PTX shfl.sync instruction computes it (clamp/segment mask from width). */
unsigned shuffle_source(int op, unsigned lane, int arg, int width) {
    int segmask = 32 - width;      /* bits of the lane that select the segment */
    int lo = (int)lane & segmask;  /* first lane of the segment */
    int hi = lo | (31 & ~segmask); /* last lane of the segment */
    int j;
    bool ok;
    switch (op) {
    case WOP_UP: j = (int)lane - arg; ok = j >= lo; break;
    case WOP_DOWN: j = (int)lane + arg; ok = j <= hi; break;
    case WOP_XOR: j = (int)lane ^ arg; ok = j <= hi; break;
    default: j = lo | (arg & ~segmask & 31); ok = true; break;
    }
    return ok ? (unsigned)j : lane;
}

/* Completes the warp operation of f's group when every live lane of its mask is waiting in it. */
bool try_resolve(Warp &w, Fiber *f) {
    unsigned need = f->wmask & w.live;
    if ((w.waiting & need) != need) return false;
    Fiber **lanes = &g_fibers[f->warp * 32];
    for (unsigned m = need; m; m &= m - 1) {
        Fiber *g = lanes[__builtin_ctz(m)];
        if (g->wop != f->wop || g->wmask != f->wmask || g->wwidth != f->wwidth)
            fatal("warp %u: lane %u is in %s(mask 0x%08x) while lane %u is in %s(mask 0x%08x): the lanes of a mask "
                  "must meet in the same warp operation with the same mask",
                  f->warp, f->lane, wop_name(f->wop), f->wmask, g->lane, wop_name(g->wop), g->wmask);
    }
    uint64_t all = 0;
    int64_t acc = 0;
    bool first = true;
    for (unsigned m = need; m; m &= m - 1) {
        Fiber *g = lanes[__builtin_ctz(m)];
        uint32_t v = (uint32_t)g->wval;
        switch (f->wop) {
        case WOP_BALLOT: case WOP_ANY: case WOP_ALL: all |= (uint64_t)(g->wval != 0) << g->lane; break;
        case WOP_REDUCE_ADD: acc += v; break;
        case WOP_REDUCE_MIN: acc = first || (int32_t)v < acc ? (int32_t)v : acc; break;
        case WOP_REDUCE_MAX: acc = first || (int32_t)v > acc ? (int32_t)v : acc; break;
        case WOP_REDUCE_UMIN: acc = first || v < (uint64_t)acc ? v : acc; break;
        case WOP_REDUCE_UMAX: acc = first || v > (uint64_t)acc ? v : acc; break;
        default: break;
        }
        first = false;
    }
    for (unsigned m = need; m; m &= m - 1) {
        Fiber *g = lanes[__builtin_ctz(m)];
        switch (f->wop) {
        case WOP_SYNC: g->wres = 0; break;
        case WOP_BALLOT: g->wres = all; break;
        case WOP_ANY: g->wres = all != 0; break;
        case WOP_ALL: g->wres = all == need; break;
        case WOP_REDUCE_ADD: case WOP_REDUCE_MIN: case WOP_REDUCE_MAX: case WOP_REDUCE_UMIN: case WOP_REDUCE_UMAX:
            g->wres = (uint32_t)acc;
            break;
        default: {
            unsigned src = shuffle_source(g->wop, g->lane, g->warg, g->wwidth);
            g->wres = (need >> src & 1) ? lanes[src]->wval : POISON;
            break;
        }
        }
        g->state = RUNNABLE;
    }
    w.waiting &= ~need;
    return true;
}

/* A thread finished: it no longer holds back barriers or warp operations. */
void thread_exited(Fiber *f) {
    g_blk.live--;
    Warp &w = g_blk.warps[f->warp];
    w.live &= ~(1u << f->lane);
    for (unsigned pending = w.waiting; pending;) {
        Fiber *g = g_fibers[f->warp * 32 + (unsigned)__builtin_ctz(pending)];
        pending &= ~(1u << g->lane);
        if (try_resolve(w, g)) pending &= ~g->wmask;
    }
}

void release_barrier() {
    unsigned count = 0, n = 0;
    for (unsigned t = 0; t < g_blk.nthreads; t++) {
        Fiber *f = g_fibers[t];
        if (f->state != AT_BARRIER) continue;
        count += (unsigned)f->bar_pred;
        n++;
        f->state = RUNNABLE;
    }
    g_blk.bar_count = count;
    g_blk.bar_participants = n;
    g_blk.at_barrier = 0;
}

[[noreturn]] void deadlock() {
    unsigned at_bar = 0, at_warp = 0, done = 0;
    const Fiber *example = nullptr;
    for (unsigned t = 0; t < g_blk.nthreads; t++) {
        const Fiber *f = g_fibers[t];
        at_bar += f->state == AT_BARRIER;
        done += f->state == DONE;
        if (f->state == AT_WARP) {
            at_warp++;
            if (!example) example = f;
        }
    }
    g_thread = nullptr;
    char what[160] = "";
    if (example)
        snprintf(what, sizeof what, "; e.g. thread %u waits in %s(mask 0x%08x) for lanes 0x%08x", example->linear,
                 wop_name(example->wop), example->wmask,
                 example->wmask & g_blk.warps[example->warp].live & ~g_blk.warps[example->warp].waiting);
    fatal("deadlock in kernel %s, block (%u,%u,%u): %u threads wait at __syncthreads, %u in warp operations, %u have "
          "finished%s (a barrier that not all threads of the block reach, or a warp mask naming lanes that wait "
          "elsewhere)",
          g_kernel_name, g_block_idx.x, g_block_idx.y, g_block_idx.z, at_bar, at_warp, done, what);
}

void run_block() {
    unsigned n = g_blk.nthreads;
    for (unsigned t = 0; t < n; t++) g_fibers[t]->state = RUNNABLE;
    for (unsigned w = 0; w < (n + 31) / 32; w++) {
        unsigned lanes = n - w * 32 >= 32 ? 32 : n - w * 32;
        g_blk.warps[w].live = lanes == 32 ? ~0u : (1u << lanes) - 1;
        g_blk.warps[w].waiting = 0;
    }
    g_blk.live = n;
    g_blk.at_barrier = 0;
    bool shuffle = g_cfg.seed != 0;
    while (g_blk.live) {
        if (shuffle)
            for (unsigned i = n - 1; i > 0; i--) std::swap(g_order[i], g_order[next_random() % (i + 1)]);
        bool ran = false;
        for (unsigned i = 0; i < n; i++) {
            Fiber *f = g_fibers[g_order[i]];
            if (f->state != RUNNABLE) continue;
            ran = true;
            resume(f);
            if (f->state == DONE) thread_exited(f);
        }
        if (g_blk.live && g_blk.at_barrier == g_blk.live)
            release_barrier();
        else if (!ran && g_blk.live)
            deadlock();
    }
}

/* Static shared memory of non-template functions (cuda_emu.h), poisoned at each block start. */
extern "C" char __start_qbemu_shared[] __attribute__((weak));
extern "C" char __stop_qbemu_shared[] __attribute__((weak));

void poison(void *p, size_t n) {
#if defined(__x86_64__)
    /* rep stosb, not memset: under ASan the section holds redzones between the variables, which memset would report */
    asm volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(0xff) : "memory");
#else
    memset(p, 0xff, n);
#endif
}

/* ---- memory table: live device allocations and pinned host allocations */
enum { MEM_DEVICE = 1, MEM_PINNED = 2 };
struct Alloc {
    size_t size;
    int kind;
};
std::map<uintptr_t, Alloc> g_allocs;

/* The allocation holding p (p may be one past its end when end_ok), or nullptr. */
const std::pair<const uintptr_t, Alloc> *find_alloc(const void *p, bool end_ok) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return nullptr;
    --it;
    if (a < it->first + it->second.size || (end_ok && a == it->first + it->second.size)) return &*it;
    return nullptr;
}

bool is_device(const void *p) {
    auto *a = find_alloc(p, false);
    return a && a->second.kind == MEM_DEVICE;
}

/* cudaErrorInvalidValue unless [p, p+n) lies inside one live device allocation */
cudaError_t check_device_range(const char *call, const char *side, const void *p, size_t n) {
    auto *a = find_alloc(p, false);
    if (!a || a->second.kind != MEM_DEVICE) {
        note("%s: %s %p is not device memory (a host pointer where a device pointer belongs, or freed memory)", call,
             side, p);
        return cudaErrorInvalidValue;
    }
    if ((uintptr_t)p + n > a->first + a->second.size) {
        note("%s: %s range [%p, +%zu) runs past the end of the %zu-byte device allocation at %p", call, side, p, n,
             a->second.size, (void *)a->first);
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

cudaError_t check_host(const char *call, const char *side, const void *p) {
    if (is_device(p)) {
        note("%s: %s %p is device memory (a device pointer where a host pointer belongs)", call, side, p);
        return cudaErrorInvalidValue;
    }
    if (!p) {
        note("%s: %s is NULL", call, side);
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

/* ---- streams and events: handles checked against the live set; work runs at once, in order */
struct Stream {
    unsigned flags;
};
struct Event {
    unsigned flags;
    bool recorded;
    double ms;
};
std::set<const void *> g_streams, g_events;
std::map<const void *, int> g_max_dynamic_smem; /* kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize */

bool stream_ok(cudaStream_t s) {
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || g_streams.count((const void *)s);
}

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const size_t SMEM_DEFAULT = 48 * 1024, SMEM_OPTIN = 232448; /* sm_90: 48 KiB without opt-in, 227 KiB with */

bool in_kernel() { return g_thread && std::this_thread::get_id() == g_kernel_os_thread; }

#define API_ENTRY(name)                                                              \
    do {                                                                             \
        if (in_kernel()) fatal("%s called from device code (not emulated)", name); \
        read_settings();                                                             \
    } while (0)
#define NEED_DEVICE()                                       \
    do {                                                    \
        if (!g_cfg.have_device) return set_error(cudaErrorNoDevice); \
    } while (0)

} /* namespace */

void device_only(const char *what) { fatal("%s used outside a kernel", what); }

void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("qb_cuda_emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("qb_cuda_emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    if (g_thread) {
        const Fiber *f = static_cast<const Fiber *>(g_thread);
        fprintf(stderr, " [kernel %s, block (%u,%u,%u), thread (%u,%u,%u)]", g_kernel_name, g_block_idx.x,
                g_block_idx.y, g_block_idx.z, f->tid.x, f->tid.y, f->tid.z);
    }
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

int barrier(int kind, int pred) {
    Fiber *f = current("__syncthreads");
    f->state = AT_BARRIER;
    f->bar_pred = pred != 0;
    g_blk.at_barrier++;
    yield(f);
    switch (kind) {
    case 1: return (int)g_blk.bar_count;
    case 2: return g_blk.bar_count == g_blk.bar_participants;
    case 3: return g_blk.bar_count > 0;
    default: return 0;
    }
}

uint64_t warp_op(int op, unsigned mask, uint64_t value, int arg, int width) {
    Fiber *f = current(wop_name(op));
    if (width < 1 || width > 32 || (width & (width - 1)))
        fatal("%s: width %d is not a power of two up to 32", wop_name(op), width);
    if (!(mask >> f->lane & 1))
        fatal("%s: mask 0x%08x does not include the calling lane %u", wop_name(op), mask, f->lane);
    f->wop = op;
    f->wmask = mask;
    f->wval = value;
    f->warg = arg;
    f->wwidth = width;
    f->state = AT_WARP;
    Warp &w = g_blk.warps[f->warp];
    w.waiting |= 1u << f->lane;
    if (!try_resolve(w, f)) yield(f);
    return f->wres;
}

unsigned active_mask() {
    Fiber *f = current("__activemask");
    return g_blk.warps[f->warp].live;
}

int check_kernel_pointer(const void *p, const char *kernel, int index) {
    if (!p) return 0;
    std::lock_guard<std::mutex> lock(g_mutex);
    if (find_alloc(p, true)) return 0;
    note("kernel %s: argument %d (%p) is neither device memory nor pinned host memory (a host pointer passed to a "
         "kernel, or freed memory)",
         kernel, index, p);
    return 1;
}

void set_seed(uint64_t s) {
    read_settings();
    std::lock_guard<std::mutex> lock(g_mutex);
    g_cfg.seed = s;
    g_rng_seeded = false;
}

uint64_t seed() {
    read_settings();
    return g_cfg.seed;
}

void launch(const char *name, const void *fn, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            void (*body)(void *), void *ctx, int bad_args) {
    if (in_kernel()) fatal("kernel %s launched from device code (dynamic parallelism is not emulated)", name);
    read_settings();
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_cfg.have_device) {
        set_error(cudaErrorNoDevice);
        return;
    }
    if (!stream_ok(stream)) {
        note("launch of %s: stream %p is not a live stream", name, (void *)stream);
        set_error(cudaErrorInvalidResourceHandle);
        return;
    }
    uint64_t nthreads = (uint64_t)block.x * block.y * block.z;
    if (!block.x || !block.y || !block.z || !grid.x || !grid.y || !grid.z || block.x > 1024 || block.y > 1024 ||
        block.z > 64 || nthreads > 1024 || grid.x > INT_MAX || grid.y > 65535 || grid.z > 65535) {
        note("launch of %s: grid (%u,%u,%u), block (%u,%u,%u) is not a valid configuration (at most 1024 threads, "
             "block.z <= 64, grid.y and grid.z <= 65535)",
             name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    auto attr = g_max_dynamic_smem.find(fn);
    size_t smem_limit = attr == g_max_dynamic_smem.end() ? SMEM_DEFAULT : (size_t)attr->second;
    if (smem > smem_limit) {
        note("launch of %s: %zu bytes of dynamic shared memory exceed the limit of %zu%s", name, smem, smem_limit,
             smem > SMEM_DEFAULT && smem <= SMEM_OPTIN
                 ? " (raise it with cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n))"
                 : "");
        set_error(cudaErrorInvalidValue);
        return;
    }
    if (bad_args) {
        set_error(cudaErrorIllegalAddress);
        return;
    }
    if (!ensure_fibers((unsigned)nthreads)) {
        note("launch of %s: cannot map fiber stacks", name);
        set_error(cudaErrorMemoryAllocation);
        return;
    }
    unsigned char *dyn = (unsigned char *)malloc(smem);
    if (!dyn && smem) {
        set_error(cudaErrorMemoryAllocation);
        return;
    }
    g_kernel_name = name;
    g_kernel_os_thread = std::this_thread::get_id();
    g_body = body;
    g_body_ctx = ctx;
    g_block_dim = block;
    g_grid_dim = grid;
    g_dynamic_smem = dyn;
    g_blk.nthreads = (unsigned)nthreads;
    g_order.resize(nthreads);
    for (unsigned t = 0; t < nthreads; t++) {
        Fiber *f = g_fibers[t];
        f->tid = make_uint3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
        f->linear = t;
        f->lane = t % 32;
        f->warp = t / 32;
        g_order[t] = t;
    }
    /* blocks in index order, or (seeded) in the order start + i * stride mod count with a stride coprime to it */
    uint64_t nblocks = (uint64_t)grid.x * grid.y * grid.z, start = 0, stride = 1;
    if (g_cfg.seed && nblocks > 1) {
        start = next_random() % nblocks;
        do stride = 1 + next_random() % (nblocks - 1);
        while (std::gcd(stride, nblocks) != 1);
    }
    size_t static_smem = (size_t)(__stop_qbemu_shared - __start_qbemu_shared);
    for (uint64_t i = 0; i < nblocks; i++) {
        uint64_t b = (uint64_t)(((unsigned __int128)i * stride + start) % nblocks);
        g_block_idx = make_uint3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                                 (unsigned)(b / ((uint64_t)grid.x * grid.y)));
        if (static_smem) poison(__start_qbemu_shared, static_smem);
        if (smem) poison(dyn, smem);
        run_block();
    }
    g_thread = nullptr;
    g_dynamic_smem = nullptr;
    free(dyn);
}

} /* namespace qbemu */

long long clock64() {
    return (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/* ================================ cudart ================================ */
using namespace qbemu;

namespace {
const char *kind_name(cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
    default: return "?";
    }
}

cudaError_t do_memcpy(const char *call, void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_cfg.have_device) return set_error(cudaErrorNoDevice);
    if (!stream_ok(s)) return set_error(cudaErrorInvalidResourceHandle);
    char what[64];
    snprintf(what, sizeof what, "%s(%s, %zu bytes)", call, kind_name(kind), n);
    bool dst_dev, src_dev;
    switch (kind) {
    case cudaMemcpyHostToHost: dst_dev = false, src_dev = false; break;
    case cudaMemcpyHostToDevice: dst_dev = true, src_dev = false; break;
    case cudaMemcpyDeviceToHost: dst_dev = false, src_dev = true; break;
    case cudaMemcpyDeviceToDevice: dst_dev = true, src_dev = true; break;
    case cudaMemcpyDefault: dst_dev = is_device(dst), src_dev = is_device(src); break;
    default: note("%s: invalid cudaMemcpyKind %d", call, (int)kind); return set_error(cudaErrorInvalidMemcpyDirection);
    }
    if (n == 0) return cudaSuccess;
    cudaError_t e = dst_dev ? check_device_range(what, "destination", dst, n) : check_host(what, "destination", dst);
    if (e == cudaSuccess)
        e = src_dev ? check_device_range(what, "source", src, n) : check_host(what, "source", src);
    if (e != cudaSuccess) return set_error(e);
    memcpy(dst, src, n);
    return cudaSuccess;
}

cudaError_t do_memset(const char *call, void *p, int value, size_t n, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_cfg.have_device) return set_error(cudaErrorNoDevice);
    if (!stream_ok(s)) return set_error(cudaErrorInvalidResourceHandle);
    if (n == 0) return cudaSuccess;
    cudaError_t e = check_device_range(call, "destination", p, n);
    if (e != cudaSuccess) return set_error(e);
    memset(p, value, n);
    return cudaSuccess;
}

cudaDeviceProp device_properties();

cudaError_t do_malloc(void **p, size_t n, int kind) {
    if (!p) return set_error(cudaErrorInvalidValue);
    *p = nullptr;
    if (!g_cfg.have_device) return set_error(cudaErrorNoDevice);
    if (n == 0) return cudaSuccess;
    if (kind == MEM_DEVICE) { /* the emulated card's memory is finite, as a real one's */
        size_t used = 0;
        std::lock_guard<std::mutex> lock(g_mutex);
        for (auto &a : g_allocs)
            if (a.second.kind == MEM_DEVICE) used += a.second.size;
        if (n > device_properties().totalGlobalMem - used) return set_error(cudaErrorMemoryAllocation);
    }
    void *q = nullptr;
    if (posix_memalign(&q, 256, n) != 0) return set_error(cudaErrorMemoryAllocation);
    memset(q, 0xff, n); /* uninitialised device memory reads as NaN / -1 */
    std::lock_guard<std::mutex> lock(g_mutex);
    g_allocs[(uintptr_t)q] = Alloc{n, kind};
    *p = q;
    return cudaSuccess;
}

cudaError_t do_free(const char *call, void *p, int kind) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != kind) {
        note("%s(%p): not the start of a live %s allocation (double free, or the wrong free call)", call, p,
             kind == MEM_DEVICE ? "cudaMalloc" : "cudaMallocHost");
        return set_error(cudaErrorInvalidValue);
    }
    g_allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaDeviceProp device_properties() {
    cudaDeviceProp p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "NVIDIA H200 (qb_cuda_emu)");
    p.totalGlobalMem = 150754820096ull;
    p.sharedMemPerBlock = SMEM_DEFAULT;
    p.sharedMemPerBlockOptin = SMEM_OPTIN;
    p.sharedMemPerMultiprocessor = 233472;
    p.reservedSharedMemPerBlock = 1024;
    p.regsPerBlock = 65536;
    p.regsPerMultiprocessor = 65536;
    p.warpSize = 32;
    p.memPitch = 2147483647;
    p.maxThreadsPerBlock = 1024;
    p.maxThreadsDim[0] = 1024, p.maxThreadsDim[1] = 1024, p.maxThreadsDim[2] = 64;
    p.maxGridSize[0] = INT_MAX, p.maxGridSize[1] = 65535, p.maxGridSize[2] = 65535;
    p.totalConstMem = 65536;
    p.major = 9;
    p.minor = 0;
    p.textureAlignment = 512;
    p.texturePitchAlignment = 32;
    p.multiProcessorCount = 132;
    p.canMapHostMemory = 1;
    p.concurrentKernels = 1;
    p.ECCEnabled = 1;
    p.asyncEngineCount = 3;
    p.unifiedAddressing = 1;
    p.memoryBusWidth = 6144;
    p.l2CacheSize = 50331648;
    p.persistingL2CacheMaxSize = 32505856;
    p.maxThreadsPerMultiProcessor = 2048;
    p.streamPrioritiesSupported = 1;
    p.globalL1CacheSupported = 1;
    p.localL1CacheSupported = 1;
    p.managedMemory = 1;
    p.concurrentManagedAccess = 1;
    p.computePreemptionSupported = 1;
    p.cooperativeLaunch = 1;
    p.maxBlocksPerMultiProcessor = 32;
    p.accessPolicyMaxWindowSize = 134213632;
    p.hostRegisterSupported = 1;
    p.memoryPoolsSupported = 1;
    p.clusterLaunch = 1;
    p.deviceNumaId = -1;
    p.hostNumaId = -1;
    return p;
}
} /* namespace */

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    API_ENTRY("cudaGetDeviceCount");
    if (!count) return set_error(cudaErrorInvalidValue);
    *count = g_cfg.devices;
    return g_cfg.have_device ? cudaSuccess : set_error(cudaErrorNoDevice);
}

int g_current_device = 0;

cudaError_t cudaSetDevice(int device) {
    API_ENTRY("cudaSetDevice");
    NEED_DEVICE();
    if (device < 0 || device >= g_cfg.devices) return set_error(cudaErrorInvalidDevice);
    g_current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    API_ENTRY("cudaGetDevice");
    NEED_DEVICE();
    if (!device) return set_error(cudaErrorInvalidValue);
    *device = g_current_device;
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *attr, const void *ptr) {
    API_ENTRY("cudaPointerGetAttributes");
    if (!attr) return set_error(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(g_mutex);
    auto *a = find_alloc(ptr, false);
    *attr = cudaPointerAttributes{};
    attr->type = !a ? cudaMemoryTypeUnregistered : a->second.kind == MEM_DEVICE ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
    attr->device = g_current_device;
    attr->devicePointer = a && a->second.kind == MEM_DEVICE ? (void *)ptr : nullptr;
    attr->hostPointer = a && a->second.kind == MEM_DEVICE ? nullptr : (void *)ptr;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    API_ENTRY("cudaGetDeviceProperties");
    NEED_DEVICE();
    if (!prop) return set_error(cudaErrorInvalidValue);
    if (device < 0 || device >= g_cfg.devices) return set_error(cudaErrorInvalidDevice);
    *prop = device_properties();
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    API_ENTRY("cudaDeviceGetAttribute");
    NEED_DEVICE();
    if (!value) return set_error(cudaErrorInvalidValue);
    if (device < 0 || device >= g_cfg.devices) return set_error(cudaErrorInvalidDevice);
    cudaDeviceProp p = device_properties();
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; break;
    case cudaDevAttrUnifiedAddressing: *value = 1; break;
    default:
        note("cudaDeviceGetAttribute: attribute %d is not emulated", (int)attr);
        return set_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
    if (!v) return set_error(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
    if (!v) return set_error(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    API_ENTRY("cudaDeviceSynchronize");
    NEED_DEVICE();
    return cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
    API_ENTRY("cudaDeviceReset");
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return g_last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define QBEMU_ERR(name) \
    case name: return #name;
        QBEMU_ERR(cudaSuccess)
        QBEMU_ERR(cudaErrorInvalidValue)
        QBEMU_ERR(cudaErrorMemoryAllocation)
        QBEMU_ERR(cudaErrorInvalidConfiguration)
        QBEMU_ERR(cudaErrorInvalidMemcpyDirection)
        QBEMU_ERR(cudaErrorNoDevice)
        QBEMU_ERR(cudaErrorInvalidDevice)
        QBEMU_ERR(cudaErrorInvalidResourceHandle)
        QBEMU_ERR(cudaErrorIllegalAddress)
        QBEMU_ERR(cudaErrorNotReady)
        QBEMU_ERR(cudaErrorInvalidDeviceFunction)
#undef QBEMU_ERR
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    default: return "unrecognized error code";
    }
}

cudaError_t cudaMalloc(void **p, size_t n) {
    API_ENTRY("cudaMalloc");
    return do_malloc(p, n, MEM_DEVICE);
}

cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s) {
    API_ENTRY("cudaMallocAsync");
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!stream_ok(s)) return set_error(cudaErrorInvalidResourceHandle);
    }
    return do_malloc(p, n, MEM_DEVICE);
}

cudaError_t cudaFree(void *p) {
    API_ENTRY("cudaFree");
    return do_free("cudaFree", p, MEM_DEVICE);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    API_ENTRY("cudaFreeAsync");
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!stream_ok(s)) return set_error(cudaErrorInvalidResourceHandle);
    }
    return do_free("cudaFreeAsync", p, MEM_DEVICE);
}

cudaError_t cudaMallocHost(void **p, size_t n) {
    API_ENTRY("cudaMallocHost");
    return do_malloc(p, n, MEM_PINNED);
}

cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int flags) {
    API_ENTRY("cudaHostAlloc");
    (void)flags;
    return do_malloc(p, n, MEM_PINNED);
}

cudaError_t cudaFreeHost(void *p) {
    API_ENTRY("cudaFreeHost");
    return do_free("cudaFreeHost", p, MEM_PINNED);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    API_ENTRY("cudaMemGetInfo");
    NEED_DEVICE();
    size_t used = 0;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        for (auto &a : g_allocs)
            if (a.second.kind == MEM_DEVICE) used += a.second.size;
    }
    size_t total = device_properties().totalGlobalMem;
    if (total_bytes) *total_bytes = total;
    if (free_bytes) *free_bytes = used < total ? total - used : 0;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    API_ENTRY("cudaMemcpy");
    return do_memcpy("cudaMemcpy", dst, src, n, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    API_ENTRY("cudaMemcpyAsync");
    return do_memcpy("cudaMemcpyAsync", dst, src, n, kind, s);
}

cudaError_t cudaMemset(void *p, int value, size_t n) {
    API_ENTRY("cudaMemset");
    return do_memset("cudaMemset", p, value, n, nullptr);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    API_ENTRY("cudaMemsetAsync");
    return do_memset("cudaMemsetAsync", p, value, n, s);
}

cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t n, size_t offset, cudaMemcpyKind kind) {
    API_ENTRY("cudaMemcpyToSymbol");
    NEED_DEVICE();
    if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return set_error(cudaErrorInvalidMemcpyDirection);
    memcpy((char *)symbol + offset, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t n, size_t offset, cudaMemcpyKind kind) {
    API_ENTRY("cudaMemcpyFromSymbol");
    NEED_DEVICE();
    if (kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return set_error(cudaErrorInvalidMemcpyDirection);
    memcpy(dst, (const char *)symbol + offset, n);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    API_ENTRY("cudaFuncSetAttribute");
    NEED_DEVICE();
    if (!func) return set_error(cudaErrorInvalidDeviceFunction);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > SMEM_OPTIN) {
            note("cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the sm_90 opt-in limit of %zu", value,
                 SMEM_OPTIN);
            return set_error(cudaErrorInvalidValue);
        }
        std::lock_guard<std::mutex> lock(g_mutex);
        g_max_dynamic_smem[func] = value;
    }
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    API_ENTRY("cudaStreamCreateWithFlags");
    NEED_DEVICE();
    if (!s) return set_error(cudaErrorInvalidValue);
    Stream *st = new Stream{flags};
    std::lock_guard<std::mutex> lock(g_mutex);
    g_streams.insert(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int priority) {
    (void)priority;
    return cudaStreamCreateWithFlags(s, flags);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    API_ENTRY("cudaStreamDestroy");
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_streams.erase((const void *)s)) {
        note("cudaStreamDestroy(%p): not a live stream", (void *)s);
        return set_error(cudaErrorInvalidResourceHandle);
    }
    delete (Stream *)s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    API_ENTRY("cudaStreamSynchronize");
    NEED_DEVICE();
    std::lock_guard<std::mutex> lock(g_mutex);
    return stream_ok(s) ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t s) { return cudaStreamSynchronize(s); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    API_ENTRY("cudaEventCreateWithFlags");
    NEED_DEVICE();
    if (!e) return set_error(cudaErrorInvalidValue);
    Event *ev = new Event{flags, false, 0.0};
    std::lock_guard<std::mutex> lock(g_mutex);
    g_events.insert(ev);
    *e = (cudaEvent_t)ev;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    API_ENTRY("cudaEventDestroy");
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_events.erase((const void *)e)) return set_error(cudaErrorInvalidResourceHandle);
    delete (Event *)e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    API_ENTRY("cudaEventRecord");
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_events.count((const void *)e) || !stream_ok(s)) return set_error(cudaErrorInvalidResourceHandle);
    Event *ev = (Event *)e;
    ev->recorded = true;
    ev->ms = now_ms();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    API_ENTRY("cudaEventSynchronize");
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_events.count((const void *)e) ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    API_ENTRY("cudaStreamWaitEvent");
    (void)flags;
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_events.count((const void *)e) && stream_ok(s) ? cudaSuccess
                                                           : set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    API_ENTRY("cudaEventElapsedTime");
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!ms || !g_events.count((const void *)start) || !g_events.count((const void *)end))
        return set_error(cudaErrorInvalidResourceHandle);
    const Event *a = (const Event *)start, *b = (const Event *)end;
    if ((a->flags | b->flags) & cudaEventDisableTiming) return set_error(cudaErrorInvalidResourceHandle);
    if (!a->recorded || !b->recorded) return set_error(cudaErrorNotReady);
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}

} /* extern "C" */

/* For emu_cublas.cpp: device-range checks under the table lock. */
namespace qbemu {
cudaError_t check_device_buffer(const char *call, const char *what, const void *p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mutex);
    return check_device_range(call, what, p, n);
}
bool device_present() {
    read_settings();
    return g_cfg.have_device;
}
} /* namespace qbemu */

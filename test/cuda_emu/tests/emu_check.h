/* emu_check.h: small checks for the CUDA emulator's tests. Each test is plain CUDA (a .cu file): nvcc builds it in a
 * -Dcuda=enabled build (it skips without a GPU), g++ builds it against the emulator in a -Dgpu_emu=true build. */
#pragma once
#include "autograd/cuda/cuda_compat.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef QB_CUDA_EMU
#include <sys/wait.h>
#include <unistd.h>
#endif

struct EmuCheck {
    int passed = 0, failed = 0;
};
inline EmuCheck g_check;

#define EXPECT(cond, ...)                                             \
    do {                                                              \
        if (cond) {                                                   \
            g_check.passed++;                                         \
        } else {                                                      \
            g_check.failed++;                                         \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            printf(__VA_ARGS__);                                      \
            printf("\n");                                             \
        }                                                             \
    } while (0)

/* a CUDA call that must succeed */
#define CUDA_OK(call)                                                                                       \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        EXPECT(e_ == cudaSuccess, "%s -> %s", #call, cudaGetErrorString(e_));                              \
    } while (0)

/* the error a kernel launch left (cudaGetLastError after a device sync) */
inline cudaError_t launch_result() {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    cudaDeviceSynchronize();
    return cudaGetLastError();
}

/* exit 77 (meson: SKIP) when no device is visible */
inline void require_device(const char *test) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        printf("SKIP %s: no CUDA device visible\n", test);
        fflush(stdout);
        exit(77);
    }
}

/* largest |got - want| / max(1, |want|) over n values; NaN when any value is NaN */
template <class A, class B>
inline double max_rel_err(const A *got, const B *want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        if (std::isnan(g) != std::isnan(w)) return NAN;
        double e = std::fabs(g - w) / std::fmax(1.0, std::fabs(w));
        if (e > worst) worst = e;
    }
    return worst;
}

template <class T>
struct DeviceBuffer {
    T *ptr = nullptr;
    size_t n = 0;
    explicit DeviceBuffer(size_t count) : n(count) { CUDA_OK(cudaMalloc((void **)&ptr, count * sizeof(T))); }
    DeviceBuffer(const std::vector<T> &host) : DeviceBuffer(host.size()) { upload(host); }
    ~DeviceBuffer() { cudaFree(ptr); }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    void upload(const std::vector<T> &host) {
        CUDA_OK(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> download() const {
        std::vector<T> host(n);
        CUDA_OK(cudaMemcpy(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
        return host;
    }
};

inline int finish(const char *test) {
    printf("%s: %d passed, %d failed\n", test, g_check.passed, g_check.failed);
    return g_check.failed ? 1 : 0;
}

/* deterministic test data in [-1, 1) */
inline std::vector<float> test_values(size_t n, unsigned seed) {
    std::vector<float> v(n);
    unsigned s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return v;
}

#ifdef QB_CUDA_EMU
/* Runs f in a child process; returns what it wrote to stderr, and in *signaled whether it died of a signal. */
template <class F>
inline std::string child_stderr(F f, bool *signaled = nullptr) {
    fflush(stdout);
    int pipefd[2];
    if (pipe(pipefd) != 0) return "";
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        f();
        _exit(0);
    }
    close(pipefd[1]);
    std::string err;
    char buf[4096];
    ssize_t r;
    while ((r = read(pipefd[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)r);
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (signaled) *signaled = WIFSIGNALED(status);
    return err;
}
#endif

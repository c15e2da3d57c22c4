/* test_emu_errors.cu: error paths as CUDA reports them: bad launch configurations, dynamic shared memory over the
 * limit, streams and events, device properties. Under the emulator also the checks a GPU does not make: host
 * pointers where device pointers belong (copies, memset, free, kernel arguments), copies past an allocation, and in
 * the ASan build an out-of-bounds access in a kernel. With argument --no-device (run with QB_CUDA_EMU_DEVICES=0 and
 * CUDA_VISIBLE_DEVICES= empty) it checks the no-device path instead. */
#include "emu_check.h"

__global__ void fill(float *y, int n, float v) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = v;
}

__global__ void smem_user(float *y) {
    QB_DYNAMIC_SHARED(float, buf);
    buf[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

/* writes one element past the end of y (an out-of-bounds write for ASan to report) */
__global__ void off_by_one(float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;
}

/* reads one element past the block's static shared array (through a pointer, which UBSan's bounds check misses) */
__global__ void shared_overrun(float *y) {
    __shared__ float s[32];
    float *p = s;
    p[threadIdx.x] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = p[threadIdx.x + 1];
}

static int no_device() {
    int n = -1;
    cudaError_t e = cudaGetDeviceCount(&n);
#ifdef QB_CUDA_EMU
    EXPECT(e == cudaErrorNoDevice && n == 0, "cudaGetDeviceCount: %s, %d devices", cudaGetErrorString(e), n);
#else /* no device, or no driver at all */
    EXPECT(e != cudaSuccess || n == 0, "cudaGetDeviceCount: %s, %d devices", cudaGetErrorString(e), n);
#endif
    cudaGetLastError();
    void *p = nullptr;
    EXPECT(cudaMalloc(&p, 64) != cudaSuccess && p == nullptr, "cudaMalloc fails without a device");
    cudaGetLastError();
    return finish("test_emu_errors --no-device");
}


int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--no-device") == 0) return no_device();
    require_device("test_emu_errors");
    const int n = 300;
    DeviceBuffer<float> y(n);

    /* launch configurations */
    QB_LAUNCH(fill, 1, 1025, 0, 0, y.ptr, n, 1.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads per block");
    EXPECT(cudaGetLastError() == cudaSuccess, "cudaGetLastError resets the error");
    QB_LAUNCH(fill, 1, dim3(2, 2, 65), 0, 0, y.ptr, n, 1.0f);
    EXPECT(cudaPeekAtLastError() == cudaErrorInvalidConfiguration, "blockDim.z 65");
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "cudaPeekAtLastError keeps the error");
    QB_LAUNCH(fill, dim3(1, 65536), 32, 0, 0, y.ptr, n, 1.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "gridDim.y 65536");
    QB_LAUNCH(fill, 0, 32, 0, 0, y.ptr, n, 1.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "an empty grid");
    QB_LAUNCH(fill, (n + 127) / 128, 128, 0, 0, y.ptr, n, 3.0f);
    EXPECT(launch_result() == cudaSuccess, "a good launch after the bad ones");
    std::vector<float> got = y.download();
    EXPECT(got[0] == 3.0f && got[n - 1] == 3.0f, "the good launch ran");

    /* dynamic shared memory limits: 48 KiB by default, more after cudaFuncSetAttribute, at most 227 KiB */
    DeviceBuffer<float> z(64);
    QB_LAUNCH(smem_user, 1, 64, 64 * 1024, 0, z.ptr);
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "64 KiB of dynamic shared memory without the opt-in");
    CUDA_OK(cudaFuncSetAttribute((const void *)smem_user, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
    QB_LAUNCH(smem_user, 1, 64, 64 * 1024, 0, z.ptr);
    EXPECT(launch_result() == cudaSuccess, "64 KiB after cudaFuncSetAttribute");
    EXPECT(z.download()[0] == 63.0f, "the kernel with 64 KiB ran");
    EXPECT(cudaFuncSetAttribute((const void *)smem_user, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024) ==
               cudaErrorInvalidValue,
           "300 KiB is over the device's opt-in limit");
    cudaGetLastError();

    /* streams and events */
    cudaStream_t s;
    cudaEvent_t a, b;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreate(&a));
    CUDA_OK(cudaEventCreate(&b));
    CUDA_OK(cudaEventRecord(a, s));
    QB_LAUNCH(fill, (n + 127) / 128, 128, 0, s, y.ptr, n, 4.0f);
    CUDA_OK(cudaGetLastError());
    std::vector<float> host(n, 0.0f);
    CUDA_OK(cudaMemcpyAsync(host.data(), y.ptr, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    CUDA_OK(cudaEventRecord(b, s));
    CUDA_OK(cudaStreamWaitEvent(s, b, 0));
    CUDA_OK(cudaStreamSynchronize(s));
    float ms = -1;
    CUDA_OK(cudaEventElapsedTime(&ms, a, b));
    EXPECT(ms >= 0.0f && host[n - 1] == 4.0f, "work on a stream runs in order (%g ms)", ms);
    CUDA_OK(cudaEventDestroy(a));
    CUDA_OK(cudaEventDestroy(b));
    CUDA_OK(cudaStreamDestroy(s));

    /* device description */
    cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    EXPECT(prop.major >= 8 && prop.warpSize == 32 && prop.maxThreadsPerBlock == 1024 &&
               prop.sharedMemPerBlock == 48 * 1024 && prop.sharedMemPerBlockOptin > 48 * 1024,
           "device properties: sm_%d%d %s", prop.major, prop.minor, prop.name);
    int dev = -1, rt = 0, sms = 0;
    CUDA_OK(cudaGetDevice(&dev));
    CUDA_OK(cudaRuntimeGetVersion(&rt));
    CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    EXPECT(dev == 0 && rt >= 12000 && sms == prop.multiProcessorCount, "device 0, runtime %d, %d SMs", rt, sms);
    int count = 0;
    CUDA_OK(cudaGetDeviceCount(&count));
    EXPECT(cudaSetDevice(count) == cudaErrorInvalidDevice, "cudaSetDevice past the last device");
    cudaGetLastError();
    CUDA_OK(cudaSetDevice(0));
    EXPECT(strcmp(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument") == 0, "error strings");

#ifdef QB_CUDA_EMU
    /* host/device mix-ups, which a GPU reports late or not at all */
    std::vector<float> h(n, 2.0f), back(n, 0.0f);
    EXPECT(cudaMemcpy(h.data(), back.data(), n * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
           "cudaMemcpy HostToDevice with a host destination");
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "the failed copy sets the last error");
    EXPECT(cudaMemcpy(back.data(), h.data(), n * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
           "cudaMemcpy DeviceToHost with a host source");
    EXPECT(cudaMemcpy(y.ptr, h.data(), n * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
           "cudaMemcpy DeviceToHost with a device destination");
    EXPECT(cudaMemcpy(y.ptr, h.data(), (n + 1) * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
           "cudaMemcpy past the end of the allocation");
    EXPECT(cudaMemcpy(y.ptr + 1, h.data(), (n - 1) * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess,
           "cudaMemcpy into the tail of the allocation");
    EXPECT(cudaMemcpy(back.data(), y.ptr, n * sizeof(float), cudaMemcpyDefault) == cudaSuccess && back[1] == 2.0f,
           "cudaMemcpyDefault infers the direction");
    EXPECT(cudaMemset(h.data(), 0, 16) == cudaErrorInvalidValue, "cudaMemset on host memory");
    EXPECT(cudaFree(h.data()) == cudaErrorInvalidValue, "cudaFree of host memory");
    float *tmp = nullptr;
    CUDA_OK(cudaMalloc((void **)&tmp, 64));
    CUDA_OK(cudaFree(tmp));
    EXPECT(cudaFree(tmp) == cudaErrorInvalidValue, "a second cudaFree");
    EXPECT(cudaMemcpy(tmp, h.data(), 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "a copy into freed memory");
    QB_LAUNCH(fill, 1, 32, 0, 0, h.data(), 32, 9.0f);
    EXPECT(cudaGetLastError() == cudaErrorIllegalAddress && h[0] == 2.0f,
           "a kernel given a host pointer fails and does not run");
    float *pinned = nullptr;
    CUDA_OK(cudaMallocHost((void **)&pinned, 32 * sizeof(float)));
    QB_LAUNCH(fill, 1, 32, 0, 0, pinned, 32, 5.0f);
    EXPECT(launch_result() == cudaSuccess && pinned[31] == 5.0f, "pinned host memory is mapped for kernels");
    CUDA_OK(cudaFreeHost(pinned));
    cudaStream_t dead;
    CUDA_OK(cudaStreamCreate(&dead));
    CUDA_OK(cudaStreamDestroy(dead));
    QB_LAUNCH(fill, 1, 32, 0, dead, y.ptr, n, 1.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidResourceHandle, "a launch on a destroyed stream");
    cudaGetLastError();
#if defined(__SANITIZE_ADDRESS__)
    /* the sanitizer build sees out-of-bounds accesses in kernels */
    std::string err = child_stderr([] {
        DeviceBuffer<float> b(100);
        QB_LAUNCH(off_by_one, 1, 128, 0, 0, b.ptr, 100);
    });
    EXPECT(err.find("heap-buffer-overflow") != std::string::npos && err.find("off_by_one") != std::string::npos,
           "ASan reports a kernel writing past cudaMalloc memory: %s", err.substr(0, 300).c_str());
    err = child_stderr([] {
        DeviceBuffer<float> b(32);
        QB_LAUNCH(smem_user, 1, 32, 31 * sizeof(float), 0, b.ptr);
    });
    EXPECT(err.find("heap-buffer-overflow") != std::string::npos,
           "ASan reports an overrun of dynamic shared memory: %s", err.substr(0, 300).c_str());
    err = child_stderr([] {
        DeviceBuffer<float> b(32);
        QB_LAUNCH(shared_overrun, 1, 32, 0, 0, b.ptr);
    });
    /* ASan's global-buffer-overflow, or UBSan's object-size check first when it halts on error */
    EXPECT(err.find("global-buffer-overflow") != std::string::npos ||
               err.find("insufficient space for an object") != std::string::npos,
           "the sanitizers report an overrun of static shared memory: %s", err.substr(0, 300).c_str());
#endif
#endif
    return finish("test_emu_errors");
}

// SPDX-License-Identifier: Apache-2.0
#include "common/device_memory.h"

#include <dlfcn.h>

#include <string>

#include "common/error.h"

namespace kvcore::device {

namespace {

// The four runtime entry points kvcore uses; their C ABI has been stable since CUDA 4.
using CudaError = int;  // cudaError_t
constexpr CudaError kCudaSuccess = 0, kCudaErrorMemoryAllocation = 2;

struct Runtime {
    CudaError (*get_device_count)(int*) = nullptr;
    CudaError (*malloc)(void**, size_t) = nullptr;
    CudaError (*free)(void*) = nullptr;
    const char* (*error_string)(CudaError) = nullptr;
    std::string load_error;  // empty when loaded
};

const Runtime& runtime() {
    static const Runtime loaded = [] {
        Runtime rt;
        void* lib = nullptr;
        std::string first_error;
        // The current runtime, then older ones: the entry points above are the same in each.
        for (const char* name : {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"}) {
            if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
            if (first_error.empty()) first_error = dlerror();
        }
        if (lib == nullptr) {
            rt.load_error = "the CUDA runtime (libcudart.so) cannot be loaded: " + first_error;
            return rt;
        }
        auto bind = [&](auto& fn, const char* symbol) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
            if (fn == nullptr && rt.load_error.empty()) rt.load_error = std::string("libcudart lacks ") + symbol;
        };
        bind(rt.get_device_count, "cudaGetDeviceCount");
        bind(rt.malloc, "cudaMalloc");
        bind(rt.free, "cudaFree");
        bind(rt.error_string, "cudaGetErrorString");
        return rt;  // the library stays loaded for the process: memory it handed out may outlive any pool
    }();
    return loaded;
}

}  // namespace

void* allocate(uint64_t bytes) {
    auto unusable = [](const std::string& why) {
        fail(KVC_ERR_UNSUPPORTED, "device memory needs a CUDA device, and none is usable: " + why);
    };
    const Runtime& rt = runtime();
    if (!rt.load_error.empty()) unusable(rt.load_error);
    int devices = 0;
    const CudaError probe = rt.get_device_count(&devices);
    if (probe != kCudaSuccess) unusable(rt.error_string(probe));
    if (devices == 0) unusable("no device found");
    void* memory = nullptr;
    const CudaError err = rt.malloc(&memory, bytes);
    if (err != kCudaSuccess) {
        fail(err == kCudaErrorMemoryAllocation ? KVC_ERR_NO_MEMORY : KVC_ERR_UNSUPPORTED,
             "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + rt.error_string(err));
    }
    return memory;
}

void release(void* memory) noexcept {
    if (memory != nullptr && runtime().free != nullptr) runtime().free(memory);
}

}  // namespace kvcore::device

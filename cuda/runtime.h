// SPDX-License-Identifier: Apache-2.0
// libkvcore reaches CUDA only through this table, which the plugin libkvcore_cuda.so fills (cuda/plugin.cpp):
// the kernels and the CUDA runtime calls the host side needs. libkvcore.so itself links no CUDA library:
// linking cudart_static gave it initial-exec TLS (the STATIC_TLS flag, 8 KiB), and then every dlopen of it
// failed with "cannot allocate memory in static TLS block" (Python's ctypes, the JVM, Mono; checked with
// CUDA 13). The plugin links the shared runtime and is loaded with dlopen at the first CUDA call; where it
// or libcudart cannot be loaded, the CUDA calls answer KVC_ERR_UNSUPPORTED with the loader's message.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/launch.h"

namespace kvcore::cuda {

// Bumped whenever the table or a parameter struct changes: a plugin from another build is refused.
constexpr uint32_t kPluginAbi = 1;

struct Runtime {
    uint32_t abi;
    uint32_t params_bytes;  // sizeof(DecodeParams) as the plugin saw it: a second guard against a mismatch
    cudaError_t (*get_device_count)(int*);
    cudaError_t (*get_device)(int*);
    cudaError_t (*device_get_attribute)(int*, cudaDeviceAttr, int);
    cudaError_t (*pointer_get_attributes)(cudaPointerAttributes*, const void*);
    cudaError_t (*malloc_async)(void**, size_t, cudaStream_t);
    cudaError_t (*free_async)(void*, cudaStream_t);
    cudaError_t (*memcpy_async)(void*, const void*, size_t, cudaMemcpyKind, cudaStream_t);
    cudaError_t (*memcpy_2d_async)(void*, size_t, const void*, size_t, size_t, size_t, cudaMemcpyKind, cudaStream_t);
    cudaError_t (*get_last_error)();
    const char* (*get_error_name)(cudaError_t);
    const char* (*get_error_string)(cudaError_t);
    cudaError_t (*launch_write)(const WriteParams&, cudaStream_t);
    cudaError_t (*launch_copy_blocks)(const CopyParams&, cudaStream_t);
    cudaError_t (*launch_gather)(const GatherParams&, cudaStream_t);
    cudaError_t (*launch_attention_decode)(const DecodeParams&, cudaStream_t);
};

// The plugin's one exported function.
#define KVCORE_CUDA_PLUGIN_ENTRY "kvcore_cuda_plugin_runtime"
extern "C" using PluginEntry = const Runtime* (*)();

// libkvcore side: the plugin's table, loaded once (thread-safe). Throws KVC_ERR_UNSUPPORTED with the reason
// when the plugin (or the CUDA runtime it needs) cannot be loaded.
const Runtime& runtime();

}  // namespace kvcore::cuda

/* SPDX-License-Identifier: Apache-2.0 */
// CUDA device memory without linking CUDA. The runtime (libcudart) is loaded on first use, so
// libkvcore.so links no CUDA library: it loads on machines without CUDA, and into hosts that dlopen it
// (the JVM, Mono), which cudart_static's 8 KiB of initial-exec TLS made fail.
#pragma once

#include <cstdint>

namespace kvcore::device {

// cudaMalloc on the calling thread's current device. Throws kvcore::Error: KVC_ERR_UNSUPPORTED when no
// CUDA runtime or device is usable (the message says why), KVC_ERR_NO_MEMORY when the device is full.
void* allocate(uint64_t bytes);
// cudaFree; a null pointer is ignored.
void release(void* memory) noexcept;

}  // namespace kvcore::device

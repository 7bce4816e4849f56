// SPDX-License-Identifier: Apache-2.0
// Device memory through the public C API: a pool created with KVC_MEMORY_DEVICE hands out CUDA memory
// that the embedder's kernels can address block by block. Without a usable CUDA device the test checks
// that kvcore says so clearly, then exits 77, which ctest reports as skipped.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kvcore/kvcore.h"

namespace {

int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            ++failures;                                                          \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

constexpr uint32_t kBlocks = 64, kBlockSize = 16, kLayers = 2, kHeads = 4, kHeadDim = 64;

kvc_status create_device_pool(kvc_pool** pool) {
    kvc_pool_options* options = nullptr;
    kvc_pool_options_create(&options);
    kvc_pool_options_set_num_blocks(options, kBlocks);
    kvc_pool_options_set_block_size(options, kBlockSize);
    kvc_pool_options_set_model_shape(options, kLayers, kHeads, kHeadDim, KVC_DTYPE_F16);
    kvc_pool_options_set_memory(options, KVC_MEMORY_DEVICE);
    const kvc_status status = kvc_pool_create(options, pool);
    kvc_pool_options_destroy(options);
    return status;
}

}  // namespace

int main() {
    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0) {
        kvc_pool* pool = nullptr;
        const kvc_status status = create_device_pool(&pool);
        CHECK(status == KVC_ERR_UNSUPPORTED);
        CHECK(pool == nullptr);
        CHECK(std::strstr(kvc_last_error_message(), "CUDA device") != nullptr);
        if (failures != 0) return 1;
        std::printf("SKIPPED: no usable CUDA device (%s); kvcore reports: %s\n",
                    probe != cudaSuccess ? cudaGetErrorString(probe) : "none found", kvc_last_error_message());
        return 77;
    }

    size_t free_before = 0, total = 0;
    cudaMemGetInfo(&free_before, &total);
    kvc_pool* pool = nullptr;
    CHECK(create_device_pool(&pool) == KVC_OK);
    if (pool == nullptr) return 1;

    void* base = nullptr;
    uint64_t bytes_per_block = 0;
    CHECK(kvc_pool_storage(pool, &base, &bytes_per_block) == KVC_OK);
    CHECK(bytes_per_block == uint64_t{2} * kLayers * kHeads * kHeadDim * 2 * kBlockSize);  // K and V, f16
    cudaPointerAttributes attributes{};
    CHECK(cudaPointerGetAttributes(&attributes, base) == cudaSuccess);
    CHECK(attributes.type == cudaMemoryTypeDevice);

    // Every byte of every block is writable and reads back: fill each block with its own id.
    const size_t bytes = bytes_per_block * kBlocks;
    for (uint32_t b = 0; b < kBlocks; ++b) {
        CHECK(cudaMemset(static_cast<char*>(base) + b * bytes_per_block, static_cast<int>(b), bytes_per_block) == cudaSuccess);
    }
    std::vector<unsigned char> host(bytes);
    CHECK(cudaMemcpy(host.data(), base, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (size_t i = 0; i < bytes; ++i) {
        if (host[i] != static_cast<unsigned char>(i / bytes_per_block)) {
            CHECK(!"device memory did not read back what was written");
            break;
        }
    }

    // The block table of a sequence addresses that memory.
    std::vector<int32_t> prompt(40);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i);
    kvc_sequence_id seq = 0;
    CHECK(kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), nullptr, &seq) == KVC_OK);
    CHECK(kvc_pool_allocate(pool, seq, prompt.size(), nullptr) == KVC_OK);
    int32_t table[8] = {};
    size_t n = 0;
    CHECK(kvc_pool_block_table(pool, seq, table, 8, &n) == KVC_OK);
    CHECK(n == 3);
    for (size_t i = 0; i < n; ++i) CHECK(table[i] > 0 && static_cast<uint32_t>(table[i]) < kBlocks);

    kvc_pool_destroy(pool);
    size_t free_after = 0;
    cudaMemGetInfo(&free_after, &total);
    CHECK(free_after + (1u << 20) >= free_before);  // the pool's memory went back (1 MiB of slack)
    if (failures == 0) std::printf("device pool: %llu bytes on device %d of %d, all checks passed\n",
                                   static_cast<unsigned long long>(bytes), attributes.device, devices);
    return failures == 0 ? 0 : 1;
}

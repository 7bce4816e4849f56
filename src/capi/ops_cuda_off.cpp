// SPDX-License-Identifier: Apache-2.0
// kvcore/ops_cuda.h in a build without CUDA (KVCORE_CUDA=OFF): every function exists, so the ABI is the same
// in every build, and answers KVC_ERR_UNSUPPORTED.
#include "kvcore/ops_cuda.h"

#include "capi/guard.h"

namespace {

kvc_status unsupported() noexcept {
    return kvcore::capi::reject(KVC_ERR_UNSUPPORTED,
                                "kvcore was built without CUDA (KVCORE_CUDA=OFF): the kvc_kv_cuda_* calls are unavailable");
}

}  // namespace

extern "C" {

kvc_status kvc_kv_cuda_probe(void) { return unsupported(); }
uint32_t kvc_kv_cuda_available(void) { return kvc_kv_cuda_probe() == KVC_OK ? 1u : 0u; }

kvc_status kvc_kv_cuda_write(const kvc_kv_layout*, uint32_t, void*, void*, const void*, const void*, kvc_dtype,
                             const int64_t*, size_t, void*) {
    return unsupported();
}
kvc_status kvc_kv_cuda_copy_blocks(const kvc_kv_layout*, void*, void*, const int32_t*, size_t, void*) {
    return unsupported();
}
kvc_status kvc_kv_cuda_swap_blocks(const kvc_kv_layout*, const void*, const void*, const kvc_kv_layout*, void*, void*,
                                   const int32_t*, size_t, void*) {
    return unsupported();
}
kvc_status kvc_kv_cuda_gather(const kvc_kv_layout*, uint32_t, const void*, const void*, const int32_t*, size_t,
                              const int32_t*, size_t, void*, void*, kvc_dtype, size_t, void*) {
    return unsupported();
}
kvc_status kvc_kv_cuda_attention_decode(const kvc_kv_layout*, uint32_t, const void*, const void*, const float*,
                                        uint32_t, const int32_t*, size_t, const int32_t*, size_t, float, float*,
                                        void*) {
    return unsupported();
}

}  // extern "C"

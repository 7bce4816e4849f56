// SPDX-License-Identifier: Apache-2.0
// Picks the widest kernel table the running CPU supports, once.
#include <cstdlib>
#include <cstring>

#include "ops/kernels.h"

namespace kvcore::ops {
namespace {

bool cpu_has(const char* isa) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (std::strcmp(isa, "avx512") == 0) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    if (std::strcmp(isa, "avx2") == 0) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
#endif
    return std::strcmp(isa, "generic") == 0;
}

const Kernels& choose() noexcept {
    // KVCORE_OPS_ISA may force a narrower table (tests, benchmarks); never a wider one than the CPU has.
    if (const char* forced = std::getenv("KVCORE_OPS_ISA")) {
        if (const Kernels* k = kernels_for(forced)) return *k;
    }
    for (const char* isa : {"avx512", "avx2"}) {
        if (const Kernels* k = kernels_for(isa)) return *k;
    }
    return isa_generic::table();
}

}  // namespace

const Kernels* kernels_for(const char* isa) noexcept {
    if (isa == nullptr || !cpu_has(isa)) return nullptr;
#if defined(__x86_64__) || defined(__i386__)
    if (std::strcmp(isa, "avx512") == 0) return &isa_avx512::table();
    if (std::strcmp(isa, "avx2") == 0) return &isa_avx2::table();
#endif
    return &isa_generic::table();
}

const Kernels& kernels() noexcept {
    static const Kernels& chosen = choose();
    return chosen;
}

}  // namespace kvcore::ops

// SPDX-License-Identifier: Apache-2.0
// The CPU kernels for the avx512 instruction set (KVC_ISA_TARGET); the code is ops/kernels_impl.h.
#define KVC_ISA_NAMESPACE isa_avx512
#define KVC_ISA_NAME "avx512"
#define KVC_ISA_TARGET "avx512f,avx512bw,avx512vl,avx2,fma,f16c"
#define KVC_ISA_HAS_AVX512 1
#include "ops/kernels_impl.h"

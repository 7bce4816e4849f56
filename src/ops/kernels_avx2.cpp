// SPDX-License-Identifier: Apache-2.0
// The CPU kernels for the avx2 instruction set (KVC_ISA_TARGET); the code is ops/kernels_impl.h.
#define KVC_ISA_NAMESPACE isa_avx2
#define KVC_ISA_NAME "avx2"
#define KVC_ISA_TARGET "avx2,fma,f16c"
#define KVC_ISA_HAS_F16C 1
#include "ops/kernels_impl.h"

// SPDX-License-Identifier: Apache-2.0
// The CPU kernels for the generic instruction set (flags in src/CMakeLists.txt); the code is ops/kernels_impl.h.
#define KVC_ISA_NAMESPACE isa_generic
#define KVC_ISA_NAME "generic"
#include "ops/kernels_impl.h"

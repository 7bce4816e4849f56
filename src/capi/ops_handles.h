// SPDX-License-Identifier: Apache-2.0
// The layout handle of kvcore/ops.h, shared by the CPU shims (ops_capi.cpp) and the CUDA ones (cuda/).
#pragma once

#include "kvcore/ops.h"
#include "ops/layout.h"

struct kvc_kv_layout {
    kvcore::ops::Layout config;
};

/* SPDX-License-Identifier: Apache-2.0 */
// The kvc_sequence_options handle, shared by the pool's shims and the index's (which hash prompts with
// the same extra keys: LoRA name, cache salt, multimodal items); the kvc_pool handle, shared with the
// event publisher's shims (which drain a pool's events).
#pragma once

#include "kvcore/pool.h"
#include "pool/pool.h"

struct kvc_sequence_options {
    kvcore::pool::SequenceOptions options;
};

struct kvc_pool {
    explicit kvc_pool(kvcore::pool::PoolConfig config) : impl(std::move(config)) {}
    kvcore::pool::Pool impl;
};

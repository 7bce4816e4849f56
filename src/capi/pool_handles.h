/* SPDX-License-Identifier: Apache-2.0 */
// The kvc_sequence_options handle, shared by the pool's shims and the index's (which hash prompts with
// the same extra keys: LoRA name, cache salt, multimodal items).
#pragma once

#include "kvcore/pool.h"
#include "pool/pool.h"

struct kvc_sequence_options {
    kvcore::pool::SequenceOptions options;
};

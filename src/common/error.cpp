// SPDX-License-Identifier: Apache-2.0
#include "common/error.h"

#include <cstring>

namespace kvcore {
namespace {
// A fixed buffer: setting the message must work when memory is exhausted.
thread_local char message_buffer[512] = "";
}  // namespace

void set_last_error(const char* message) noexcept {
    if (message == nullptr) message = "";
    std::strncpy(message_buffer, message, sizeof(message_buffer) - 1);
    message_buffer[sizeof(message_buffer) - 1] = '\0';
}

const char* last_error() noexcept { return message_buffer; }

}  // namespace kvcore

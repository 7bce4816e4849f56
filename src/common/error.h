/* SPDX-License-Identifier: Apache-2.0 */
// Errors inside kvcore: components throw kvcore::Error; the C layer turns it into a kvc_status and the
// thread-local message. Nothing else of this file leaks through the ABI.
#pragma once

#include <stdexcept>
#include <string>

#include "kvcore/common.h"

namespace kvcore {

class Error : public std::runtime_error {
public:
    Error(kvc_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    [[nodiscard]] kvc_status status() const noexcept { return status_; }

private:
    kvc_status status_;
};

[[noreturn]] inline void fail(kvc_status status, const std::string& message) { throw Error(status, message); }

// Sets this thread's kvc_last_error_message(). Never throws; truncates instead of allocating.
void set_last_error(const char* message) noexcept;
// This thread's last message; never NULL.
const char* last_error() noexcept;

}  // namespace kvcore

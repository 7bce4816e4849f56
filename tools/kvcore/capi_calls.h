// SPDX-License-Identifier: Apache-2.0
// Calls into kvcore's C API as the demo's and simulate's engine makes them: a failed status becomes a
// kvcore::Error naming the call, and caller buffers are read in two phases (a size query, then the copy).
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "kvcore/common.h"

namespace kvcore::cli {

// A C handle destroyed with its scope: create into &owned.p.
template <class T, void (*Destroy)(T*)>
struct Owned {
    T* p = nullptr;
    Owned() = default;
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { Destroy(p); }
};

inline void require_ok(kvc_status status, const std::string& what) {
    if (status != KVC_OK) fail(status, what + ": " + kvc_last_error_message());
}

// get(buf, capacity, &count) is a size query with (nullptr, 0); out is resized to the count, then filled.
template <typename T, typename Get>
void read_array(std::vector<T>& out, Get get, const char* what) {
    size_t count = 0;
    require_ok(get(nullptr, 0, &count), what);
    out.resize(count);
    require_ok(get(out.data(), count, &count), what);
}

// The same for text written with its NUL: get(buf, capacity, &length), length without the NUL.
template <typename Get>
std::string read_text(Get get, const char* what) {
    size_t length = 0;
    require_ok(get(nullptr, 0, &length), what);
    std::string text(length, '\0');
    require_ok(get(text.data(), length + 1, &length), what);  // data()[length] is the string's own NUL
    return text;
}

}  // namespace kvcore::cli

// SPDX-License-Identifier: Apache-2.0
// A test-side msgpack writer, written from the msgpack spec apart from kvcore's encoder, so tests can
// build every encoding a producer may choose (the narrowest or a wide integer format, float32 or
// float64, str or bin) and malformed bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace kvcore::test {

class MsgpackWriter {
public:
    std::vector<uint8_t> bytes;

    MsgpackWriter& nil() { return raw({0xc0}); }
    MsgpackWriter& boolean(bool v) { return raw({static_cast<uint8_t>(v ? 0xc3 : 0xc2)}); }
    // The narrowest format, as msgpack-c and Python's msgpack write.
    MsgpackWriter& uint(uint64_t v) {
        if (v <= 0x7f) return raw({static_cast<uint8_t>(v)});
        if (v <= 0xff) return head(0xcc, v, 1);
        if (v <= 0xffff) return head(0xcd, v, 2);
        if (v <= 0xffffffff) return head(0xce, v, 4);
        return head(0xcf, v, 8);
    }
    MsgpackWriter& sint(int64_t v) {
        if (v >= 0) return uint(static_cast<uint64_t>(v));
        if (v >= -32) return raw({static_cast<uint8_t>(v)});
        if (v >= -128) return head(0xd0, static_cast<uint64_t>(v), 1);
        if (v >= -32768) return head(0xd1, static_cast<uint64_t>(v), 2);
        if (v >= -2147483648LL) return head(0xd2, static_cast<uint64_t>(v), 4);
        return head(0xd3, static_cast<uint64_t>(v), 8);
    }
    MsgpackWriter& uint64_wide(uint64_t v) { return head(0xcf, v, 8); }
    MsgpackWriter& int64_wide(int64_t v) { return head(0xd3, static_cast<uint64_t>(v), 8); }
    MsgpackWriter& f64(double v) {
        uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        return head(0xcb, bits, 8);
    }
    MsgpackWriter& f32(float v) {
        uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        return head(0xca, bits, 4);
    }
    MsgpackWriter& str(std::string_view s) {
        if (s.size() <= 31) {
            raw({static_cast<uint8_t>(0xa0 | s.size())});
        } else if (s.size() <= 0xff) {
            head(0xd9, s.size(), 1);
        } else {
            head(0xdb, s.size(), 4);
        }
        bytes.insert(bytes.end(), s.begin(), s.end());
        return *this;
    }
    MsgpackWriter& bin(const std::vector<uint8_t>& b) {
        head(0xc4, b.size(), 1);
        bytes.insert(bytes.end(), b.begin(), b.end());
        return *this;
    }
    MsgpackWriter& array(uint32_t n) { return n <= 15 ? raw({static_cast<uint8_t>(0x90 | n)}) : head(0xdd, n, 4); }
    MsgpackWriter& map(uint32_t n) { return n <= 15 ? raw({static_cast<uint8_t>(0x80 | n)}) : head(0xdf, n, 4); }
    MsgpackWriter& raw(std::initializer_list<uint8_t> b) {
        bytes.insert(bytes.end(), b);
        return *this;
    }
    MsgpackWriter& append(const std::vector<uint8_t>& b) {
        bytes.insert(bytes.end(), b.begin(), b.end());
        return *this;
    }
    template <class T>
    MsgpackWriter& uints(const std::vector<T>& values) {
        array(static_cast<uint32_t>(values.size()));
        for (T v : values) uint(static_cast<uint64_t>(v));
        return *this;
    }

private:
    MsgpackWriter& head(uint8_t type, uint64_t v, int n) {
        bytes.push_back(type);
        for (int i = n - 1; i >= 0; --i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
        return *this;
    }
};

}  // namespace kvcore::test

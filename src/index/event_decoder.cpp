// SPDX-License-Identifier: Apache-2.0
// The decoder reads msgpack with its own cursor rather than msgpack-c (which kvcore links to encode):
// msgpack::unpack first copies the whole batch into a zone-allocated object tree and then converts it
// again, it throws its own exception types (insufficient_bytes, type_error, ...) that know nothing of
// which event and field were wrong, and its nesting limit is a recursion depth. The cursor below reads
// each value once, in place, allocating only the decoded vectors and strings, checks every length
// against the bytes left before it reserves or reads, and skips unknown values without recursion (a
// count of values still to skip), so no input, however deeply nested, can grow the stack.
#include "index/event_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

#include "common/error.h"

namespace kvcore::index {
namespace {

constexpr size_t kNoEvent = std::numeric_limits<size_t>::max();

// Where decoding is, for the error message: "event 3 (BlockStored), field token_ids".
struct Where {
    size_t event = kNoEvent;
    const char* type = nullptr;
    const char* field = nullptr;
};

enum class Family : uint8_t { kNil, kBool, kInt, kFloat, kStr, kBin, kArray, kMap, kExt };

const char* family_name(Family f) {
    switch (f) {
        case Family::kNil: return "nil";
        case Family::kBool: return "bool";
        case Family::kInt: return "integer";
        case Family::kFloat: return "float";
        case Family::kStr: return "string";
        case Family::kBin: return "bytes";
        case Family::kArray: return "array";
        case Family::kMap: return "map";
        case Family::kExt: return "ext";
    }
    return "?";
}

// One value's header: its family and, for scalars, its value; for str/bin/ext its bytes; for
// array/map its element count (whose elements follow).
struct Head {
    Family family = Family::kNil;
    bool negative = false;  // kInt: bits holds an int64 < 0
    uint64_t bits = 0;      // kInt: the value; kBool: 0/1; kArray/kMap: count; kStr/kBin/kExt: length
    double number = 0;      // kFloat
    const uint8_t* data = nullptr;

    [[nodiscard]] std::string_view text() const { return {reinterpret_cast<const char*>(data), bits}; }
};

class Reader {
public:
    Reader(std::span<const uint8_t> bytes, const Where& where)
        : begin_(bytes.data()), p_(bytes.data()), end_(bytes.data() + bytes.size()), where_(where) {}

    [[nodiscard]] size_t remaining() const { return static_cast<size_t>(end_ - p_); }
    [[nodiscard]] const uint8_t* position() const { return p_; }
    void rewind(const uint8_t* position) { p_ = position; }

    [[noreturn]] void fail(const std::string& what) const {
        std::string message = "KV event batch";
        if (where_.event != kNoEvent) {
            message += ", event " + std::to_string(where_.event);
            if (where_.type) message += std::string(" (") + where_.type + ")";
        }
        if (where_.field) message += std::string(", field ") + where_.field;
        message += ": " + what + " (at byte " + std::to_string(p_ - begin_) + " of " +
                   std::to_string(end_ - begin_) + ")";
        ::kvcore::fail(KVC_ERR_INVALID_ARGUMENT, message);
    }

    // The non-negative integers that fill token and hash arrays, without the general head(): false, and
    // nothing consumed, for any other value (or a truncated one, which head() then reports).
    bool take_uint(uint64_t& v) {
        if (p_ == end_) return false;
        const uint8_t b = *p_;
        if (b <= 0x7f) {
            v = b;
            ++p_;
            return true;
        }
        const size_t n = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : b == 0xcf ? 8 : 0;
        if (n == 0 || remaining() <= n) return false;
        v = 0;
        for (size_t i = 1; i <= n; ++i) v = v << 8 | p_[i];
        p_ += n + 1;
        return true;
    }

    [[nodiscard]] bool peek_nil() const { return p_ < end_ && *p_ == 0xc0; }
    // Consumes a nil if one is next.
    bool take_nil() {
        if (!peek_nil()) return false;
        ++p_;
        return true;
    }

    Head head() {
        Head h;
        const uint8_t b = byte();
        if (b <= 0x7f) return integer(b, false);
        if (b >= 0xe0) return integer(static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(b))), true);
        if (b >= 0x80 && b <= 0x8f) return container(Family::kMap, b & 0x0f);
        if (b >= 0x90 && b <= 0x9f) return container(Family::kArray, b & 0x0f);
        if (b >= 0xa0 && b <= 0xbf) return blob(Family::kStr, b & 0x1f);
        switch (b) {
            case 0xc0: return h;
            case 0xc2:
            case 0xc3: h.family = Family::kBool; h.bits = b & 1; return h;
            case 0xc4: return blob(Family::kBin, be(1));
            case 0xc5: return blob(Family::kBin, be(2));
            case 0xc6: return blob(Family::kBin, be(4));
            case 0xc7: return ext(be(1));
            case 0xc8: return ext(be(2));
            case 0xc9: return ext(be(4));
            case 0xca: {
                const auto bits = static_cast<uint32_t>(be(4));
                float f;
                std::memcpy(&f, &bits, sizeof f);
                h.family = Family::kFloat;
                h.number = f;
                return h;
            }
            case 0xcb: {
                const uint64_t bits = be(8);
                h.family = Family::kFloat;
                std::memcpy(&h.number, &bits, sizeof h.number);
                return h;
            }
            case 0xcc: return integer(be(1), false);
            case 0xcd: return integer(be(2), false);
            case 0xce: return integer(be(4), false);
            case 0xcf: return integer(be(8), false);
            case 0xd0: return signed_integer(static_cast<int8_t>(be(1)));
            case 0xd1: return signed_integer(static_cast<int16_t>(be(2)));
            case 0xd2: return signed_integer(static_cast<int32_t>(be(4)));
            case 0xd3: return signed_integer(static_cast<int64_t>(be(8)));
            case 0xd4: return ext(1);
            case 0xd5: return ext(2);
            case 0xd6: return ext(4);
            case 0xd7: return ext(8);
            case 0xd8: return ext(16);
            case 0xd9: return blob(Family::kStr, be(1));
            case 0xda: return blob(Family::kStr, be(2));
            case 0xdb: return blob(Family::kStr, be(4));
            case 0xdc: return container(Family::kArray, be(2));
            case 0xdd: return container(Family::kArray, be(4));
            case 0xde: return container(Family::kMap, be(2));
            case 0xdf: return container(Family::kMap, be(4));
            default: --p_; fail("0xc1 is not a msgpack value");
        }
    }

    Head expect(Family family) {
        const Head h = head();
        if (h.family != family) wrong(h, family_name(family));
        return h;
    }
    [[noreturn]] void wrong(const Head& h, const char* expected) const {
        fail(std::string("expected ") + expected + ", got " + family_name(h.family));
    }

    // Skips one value and everything inside it: a count of values still to read instead of recursion.
    void skip() {
        uint64_t pending = 1;
        while (pending > 0) {
            --pending;
            const Head h = head();
            if (h.family == Family::kArray) pending += h.bits;
            if (h.family == Family::kMap) pending += 2 * h.bits;
        }
    }

private:
    uint8_t byte() {
        if (p_ == end_) fail("input ends inside a value");
        return *p_++;
    }
    uint64_t be(size_t n) {
        if (remaining() < n) fail("input ends inside a value");
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v = v << 8 | p_[i];
        p_ += n;
        return v;
    }
    static Head integer(uint64_t bits, bool negative) {
        Head h;
        h.family = Family::kInt;
        h.bits = bits;
        h.negative = negative;
        return h;
    }
    static Head signed_integer(int64_t v) { return integer(static_cast<uint64_t>(v), v < 0); }
    Head blob(Family family, uint64_t length) {
        if (length > remaining()) fail(std::string(family_name(family)) + " of " + std::to_string(length) +
                                       " bytes runs past the end of the input");
        Head h;
        h.family = family;
        h.bits = length;
        h.data = p_;
        p_ += length;
        return h;
    }
    Head ext(uint64_t length) {
        byte();  // the extension's type
        return blob(Family::kExt, length);
    }
    // Every element takes at least one byte: a count the bytes left cannot hold is refused before anyone
    // reserves memory for it.
    Head container(Family family, uint64_t count) {
        const uint64_t min_bytes = family == Family::kMap ? 2 * count : count;
        if (min_bytes > remaining()) fail(std::string(family_name(family)) + " of " + std::to_string(count) +
                                          " elements cannot fit in the " + std::to_string(remaining()) +
                                          " bytes left");
        Head h;
        h.family = family;
        h.bits = count;
        return h;
    }

    const uint8_t* begin_;
    const uint8_t* p_;
    const uint8_t* end_;
    const Where& where_;
};

bool equals_ignore_case(std::string_view text, std::string_view lower) {
    if (text.size() != lower.size()) return false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != lower[i]) return false;
    }
    return true;
}

// The fields of BlockStored and BlockRemoved, each read by one function whichever form carries it.
enum class Field : uint8_t {
    kBlockHashes,
    kParentBlockHash,
    kTokenIds,
    kBlockSize,
    kLoraId,
    kMedium,
    kLoraName,
    kExtraKeys,
    kGroupIdx,
    kSpecKind,
    kSlidingWindow,
    kLocality,
};

struct FieldName {
    Field field;
    std::string_view name;
};

// vLLM's declaration order: the positions of the array form and the names of the map form.
constexpr FieldName kStoredFields[] = {
    {Field::kBlockHashes, "block_hashes"},
    {Field::kParentBlockHash, "parent_block_hash"},
    {Field::kTokenIds, "token_ids"},
    {Field::kBlockSize, "block_size"},
    {Field::kLoraId, "lora_id"},
    {Field::kMedium, "medium"},
    {Field::kLoraName, "lora_name"},
    {Field::kExtraKeys, "extra_keys"},
    {Field::kGroupIdx, "group_idx"},
    {Field::kSpecKind, "kv_cache_spec_kind"},
    {Field::kSlidingWindow, "kv_cache_spec_sliding_window"},
    {Field::kLocality, "locality"},
};
constexpr FieldName kRemovedFields[] = {
    {Field::kBlockHashes, "block_hashes"},
    {Field::kMedium, "medium"},
    {Field::kGroupIdx, "group_idx"},
    {Field::kLocality, "locality"},
};

constexpr uint32_t bit(Field f) { return 1u << static_cast<unsigned>(f); }

class Decoder {
public:
    explicit Decoder(std::span<const uint8_t> payload) : r_(payload, where_) {}

    EventBatch batch() {
        EventBatch out;
        const Head h = r_.head();
        if (h.family == Family::kArray) {
            // [ts, events, data_parallel_rank, ...]: vLLM's array_like EventBatch.
            if (h.bits < 2) r_.fail("a batch array needs ts and events, got " + std::to_string(h.bits) + " elements");
            where_.field = "ts";
            out.ts = ts();
            where_.field = "events";
            events(out);
            if (h.bits >= 3) {
                where_.field = "data_parallel_rank";
                out.data_parallel_rank = dp_rank();
            }
            where_.field = nullptr;
            for (uint64_t i = 3; i < h.bits; ++i) r_.skip();
        } else if (h.family == Family::kMap) {
            bool has_ts = false, has_events = false;
            for (uint64_t i = 0; i < h.bits; ++i) {
                const std::string_view key = map_key();
                if (key == "ts") {
                    where_.field = "ts";
                    out.ts = ts();
                    has_ts = true;
                } else if (key == "events") {
                    where_.field = "events";
                    out.events.clear();
                    out.unknown_events = 0;
                    events(out);
                    has_events = true;
                } else if (key == "data_parallel_rank") {
                    where_.field = "data_parallel_rank";
                    out.data_parallel_rank = dp_rank();
                } else {
                    r_.skip();
                }
                where_.field = nullptr;
            }
            if (!has_ts) r_.fail("the batch map has no \"ts\"");
            if (!has_events) r_.fail("the batch map has no \"events\"");
        } else {
            r_.wrong(h, "an array or a map (EventBatch)");
        }
        if (r_.remaining() != 0) r_.fail(std::to_string(r_.remaining()) + " bytes after the batch");
        return out;
    }

private:
    // A map's key: a string, or an empty view for any other key (skipped here; the caller skips its value).
    std::string_view map_key() {
        const uint8_t* start = r_.position();
        const Head key = r_.head();
        if (key.family == Family::kStr) return key.text();
        r_.rewind(start);
        r_.skip();
        return {};
    }

    double ts() {
        const Head h = r_.head();
        double ts = 0;
        if (h.family == Family::kFloat) {
            ts = h.number;
        } else if (h.family == Family::kInt) {
            ts = h.negative ? static_cast<double>(static_cast<int64_t>(h.bits)) : static_cast<double>(h.bits);
        } else {
            r_.wrong(h, "a float (seconds)");
        }
        if (!std::isfinite(ts)) r_.fail("ts is not a finite number");
        return ts;
    }

    std::optional<int64_t> dp_rank() {
        if (r_.take_nil()) return std::nullopt;
        return int64();
    }

    int64_t int64() {
        const Head h = r_.expect(Family::kInt);
        if (!h.negative && h.bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            r_.fail(std::to_string(h.bits) + " does not fit an int64");
        }
        return static_cast<int64_t>(h.bits);
    }

    uint32_t uint32() {
        const Head h = r_.expect(Family::kInt);
        if (h.negative || h.bits > std::numeric_limits<uint32_t>::max()) {
            r_.fail((h.negative ? std::to_string(static_cast<int64_t>(h.bits)) : std::to_string(h.bits)) +
                    " is not in 0..4294967295");
        }
        return static_cast<uint32_t>(h.bits);
    }

    // A hash as uint64, as int64 (its bits: vLLM's Python ints can be negative) or as bytes, whose last
    // 8 bytes big-endian are the value (vLLM's maybe_convert_block_hash; sha256 gives 32 bytes, and 8 is
    // the value itself).
    uint64_t hash() {
        uint64_t v;
        if (r_.take_uint(v)) return v;
        const Head h = r_.head();
        if (h.family == Family::kInt) return h.bits;
        if (h.family == Family::kBin) {
            if (h.bits < 8 || h.bits > 64) r_.fail("a hash of " + std::to_string(h.bits) + " bytes (expected 8 to 64)");
            uint64_t v = 0;
            for (uint64_t i = h.bits - 8; i < h.bits; ++i) v = v << 8 | h.data[i];
            return v;
        }
        r_.wrong(h, "a hash (integer or bytes)");
    }

    void hashes(std::vector<uint64_t>& out) {
        const Head h = r_.head();
        if (h.family != Family::kArray) r_.wrong(h, "an array of hashes");
        out.clear();
        out.reserve(h.bits);
        for (uint64_t i = 0; i < h.bits; ++i) out.push_back(hash());
    }

    void tokens(std::vector<int32_t>& out) {
        const Head h = r_.head();
        if (h.family != Family::kArray) r_.wrong(h, "an array of token ids");
        out.clear();
        out.reserve(h.bits);
        for (uint64_t i = 0; i < h.bits; ++i) {
            uint64_t v;
            if (!r_.take_uint(v)) {
                const Head t = r_.head();
                if (t.family != Family::kInt) r_.wrong(t, ("a token id at element " + std::to_string(i)).c_str());
                v = t.negative ? std::numeric_limits<uint64_t>::max() : t.bits;
            }
            if (v > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
                r_.fail("token id at element " + std::to_string(i) + " is not in 0..2147483647");
            }
            out.push_back(static_cast<int32_t>(v));
        }
    }

    // nil or a string; an empty view for nil.
    std::string_view optional_text() {
        if (r_.take_nil()) return {};
        return r_.expect(Family::kStr).text();
    }

    Medium medium() {
        const std::string_view name = optional_text();
        if (name.empty() || equals_ignore_case(name, "gpu")) return Medium::kGpu;
        if (equals_ignore_case(name, "cpu")) return Medium::kCpu;
        if (equals_ignore_case(name, "fs")) return Medium::kFs;
        if (equals_ignore_case(name, "obj")) return Medium::kObj;
        return Medium::kOther;
    }

    Locality locality() {
        const std::string_view name = optional_text();
        if (name.empty()) return Locality::kUnspecified;
        if (equals_ignore_case(name, "local")) return Locality::kLocal;
        if (equals_ignore_case(name, "remote")) return Locality::kRemote;
        return Locality::kOther;
    }

    CacheSpecKind spec_kind() {
        const std::string_view name = optional_text();
        if (name.empty()) return CacheSpecKind::kUnspecified;
        if (equals_ignore_case(name, "full_attention")) return CacheSpecKind::kFullAttention;
        if (equals_ignore_case(name, "sliding_window")) return CacheSpecKind::kSlidingWindow;
        return CacheSpecKind::kOther;
    }

    // extra_keys: nil, or one entry per block: nil or the tuple of keys its hash used.
    void extra_keys(std::vector<std::optional<std::vector<ExtraKey>>>& out) {
        out.clear();
        if (r_.take_nil()) return;
        const Head blocks = r_.head();
        if (blocks.family != Family::kArray) r_.wrong(blocks, "an array (one entry per block) or nil");
        out.reserve(blocks.bits);
        for (uint64_t b = 0; b < blocks.bits; ++b) {
            if (r_.take_nil()) {
                out.emplace_back();
                continue;
            }
            const std::string at = "block " + std::to_string(b) + "'s keys";
            const Head keys = r_.head();
            if (keys.family != Family::kArray) r_.wrong(keys, (at + ": an array or nil").c_str());
            std::vector<ExtraKey>& block = out.emplace_back(std::in_place).value();
            block.reserve(keys.bits);
            for (uint64_t k = 0; k < keys.bits; ++k) {
                const Head key = r_.head();
                ExtraKey& e = block.emplace_back();
                if (key.family == Family::kStr || key.family == Family::kBin) {
                    e.kind = key.family == Family::kStr ? ExtraKey::Kind::kText : ExtraKey::Kind::kBytes;
                    e.text.assign(key.text());
                } else if (key.family == Family::kArray && key.bits == 2) {
                    e.kind = ExtraKey::Kind::kMultimodal;
                    e.text.assign(r_.expect(Family::kStr).text());
                    e.offset = int64();
                } else {
                    r_.wrong(key, (at + ": a string, bytes or an [identifier, offset] pair").c_str());
                }
            }
        }
    }

    template <class E>
    void field(Field f, E& e) {
        switch (f) {
            case Field::kBlockHashes: hashes(e.block_hashes); return;
            case Field::kMedium: e.medium = medium(); return;
            case Field::kGroupIdx: e.group_idx = r_.take_nil() ? 0 : uint32(); return;
            case Field::kLocality: e.locality = locality(); return;
            default: break;
        }
        if constexpr (std::is_same_v<E, BlockStored>) {
            switch (f) {
                case Field::kParentBlockHash:
                    e.parent_block_hash = r_.take_nil() ? std::nullopt : std::optional<uint64_t>(hash());
                    return;
                case Field::kTokenIds: tokens(e.token_ids); return;
                case Field::kBlockSize: e.block_size = uint32(); return;
                case Field::kLoraId: e.lora_id = r_.take_nil() ? std::nullopt : std::optional<int64_t>(int64()); return;
                case Field::kLoraName: e.lora_name.assign(optional_text()); return;
                case Field::kExtraKeys: extra_keys(e.extra_keys); return;
                case Field::kSpecKind: e.spec_kind = spec_kind(); return;
                case Field::kSlidingWindow:
                    e.sliding_window = r_.take_nil() ? std::nullopt : std::optional<uint32_t>(uint32());
                    return;
                default: break;
            }
        }
        r_.skip();  // not a field of E (the tables never ask for one)
    }

    // The cross-field rules, once every field is read. `seen` has a bit per field present and not nil.
    void check(const BlockStored& e, uint32_t seen) {
        require(seen, bit(Field::kBlockHashes) | bit(Field::kTokenIds) | bit(Field::kBlockSize), kStoredFields);
        where_.field = "block_hashes";
        if (e.block_hashes.empty()) r_.fail("no block hashes");
        where_.field = "block_size";
        if (e.block_size == 0) r_.fail("block_size is 0");
        where_.field = "token_ids";
        const uint64_t full = static_cast<uint64_t>(e.block_hashes.size()) * e.block_size;
        if (!e.token_ids.empty() && e.token_ids.size() != full) {
            r_.fail(std::to_string(e.token_ids.size()) + " token ids for " + std::to_string(e.block_hashes.size()) +
                    " blocks of " + std::to_string(e.block_size) + " (expected " + std::to_string(full) +
                    " or none: vLLM publishes full blocks only)");
        }
        where_.field = "extra_keys";
        if (!e.extra_keys.empty() && e.extra_keys.size() != e.block_hashes.size()) {
            r_.fail(std::to_string(e.extra_keys.size()) + " entries for " + std::to_string(e.block_hashes.size()) +
                    " blocks (expected one per block)");
        }
        where_.field = nullptr;
    }
    void check(const BlockRemoved& e, uint32_t seen) {
        require(seen, bit(Field::kBlockHashes), kRemovedFields);
        where_.field = "block_hashes";
        if (e.block_hashes.empty()) r_.fail("no block hashes");
        where_.field = nullptr;
    }

    template <size_t N>
    void require(uint32_t seen, uint32_t required, const FieldName (&fields)[N]) {
        for (const FieldName& f : fields) {
            if ((required & bit(f.field)) && !(seen & bit(f.field))) {
                where_.field = f.name.data();
                r_.fail("missing (required)");
            }
        }
    }

    // Reads the event's fields, positionally (array form: `count` values after the tag) or by name (map
    // form: `count` pairs, the type's among them), into an E and appends it.
    template <class E, size_t N>
    void fields(EventBatch& out, bool as_map, uint64_t count, const FieldName (&table)[N]) {
        E e;
        uint32_t seen = 0;
        size_t next = 0;  // msgspec writes the fields in order: the one after the last is tried first
        for (uint64_t i = 0; i < count; ++i) {
            const FieldName* f = nullptr;
            if (as_map) {
                const std::string_view key = map_key();
                if (next < N && key == table[next].name) {
                    f = &table[next];
                } else {
                    for (const FieldName& candidate : table) {
                        if (key == candidate.name) {
                            f = &candidate;
                            break;
                        }
                    }
                }
                if (f) next = static_cast<size_t>(f - table) + 1;
            } else if (i < N) {
                f = &table[i];
            }
            if (!f) {  // unknown field, "type", or an element past the fields this decoder knows
                r_.skip();
                continue;
            }
            where_.field = f->name.data();  // a literal: NUL-terminated
            if (!r_.peek_nil()) seen |= bit(f->field);
            field(f->field, e);
            where_.field = nullptr;
        }
        check(e, seen);
        out.events.emplace_back(std::move(e));
    }

    // The map event's "type", wherever it is (msgspec writes it first, so that is tried first);
    // leaves the cursor on the map's first key.
    std::string_view map_type(uint64_t pairs) {
        const uint8_t* first = r_.position();
        std::string_view type;
        bool found = false;
        for (uint64_t i = 0; i < pairs && !found; ++i) {
            if (map_key() == "type") {
                where_.field = "type";
                type = r_.expect(Family::kStr).text();
                where_.field = nullptr;
                found = true;
            } else {
                r_.skip();
            }
        }
        if (!found) r_.fail("an event map without \"type\"");
        r_.rewind(first);
        return type;
    }

    void event(EventBatch& out) {
        const Head h = r_.head();
        std::string_view type;
        uint64_t count = 0;
        const bool as_map = h.family == Family::kMap;
        if (as_map) {
            type = map_type(h.bits);
            count = h.bits;
        } else if (h.family == Family::kArray) {
            if (h.bits == 0) r_.fail("an empty event array (no type tag)");
            where_.field = "type";
            type = r_.expect(Family::kStr).text();
            where_.field = nullptr;
            count = h.bits - 1;
        } else {
            r_.wrong(h, "an event (tagged array or map)");
        }
        if (type == "BlockStored") {
            where_.type = "BlockStored";
            fields<BlockStored>(out, as_map, count, kStoredFields);
        } else if (type == "BlockRemoved") {
            where_.type = "BlockRemoved";
            fields<BlockRemoved>(out, as_map, count, kRemovedFields);
        } else if (type == "AllBlocksCleared") {
            where_.type = "AllBlocksCleared";
            for (uint64_t i = 0; i < (as_map ? 2 * count : count); ++i) r_.skip();
            out.events.emplace_back(AllBlocksCleared{});
        } else {
            for (uint64_t i = 0; i < (as_map ? 2 * count : count); ++i) r_.skip();
            ++out.unknown_events;
        }
        where_.type = nullptr;
    }

    void events(EventBatch& out) {
        const Head h = r_.head();
        if (h.family != Family::kArray) r_.wrong(h, "an array of events");
        // Every event takes more than 16 bytes but an unknown one: reserve no more than the bytes allow.
        out.events.reserve(std::min<uint64_t>(h.bits, r_.remaining() / 16 + 1));
        const char* field = where_.field;
        where_.field = nullptr;
        for (uint64_t i = 0; i < h.bits; ++i) {
            where_.event = i;
            event(out);
        }
        where_.event = kNoEvent;
        where_.field = field;
    }

    Where where_;
    Reader r_;
};

}  // namespace

EventBatch decode_event_batch(std::span<const uint8_t> payload) { return Decoder(payload).batch(); }

const char* medium_name(Medium medium) noexcept {
    switch (medium) {
        case Medium::kGpu: return "GPU";
        case Medium::kCpu: return "CPU";
        case Medium::kFs: return "FS";
        case Medium::kObj: return "OBJ";
        case Medium::kOther: return "OTHER";
    }
    return "OTHER";
}

}  // namespace kvcore::index

/* SPDX-License-Identifier: Apache-2.0 */
#include "index/redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include "common/error.h"

namespace kvcore::index {
namespace {

// The writes of one call (see redis_store.h, "Layout" and "Expiry"). ARGV: prefix, key_ttl_ms, then runs
// of writes that differ only in their key: kind, pod, rank, tier, ttl_ms, n, and the n keys (a batch is
// mostly one run: ARGV is about a key per write). Items are {rank, tier, expiry} with rank and tier as the
// strings the client sent.
constexpr std::string_view kScript = R"lua(#!lua
local prefix, key_ttl = ARGV[1], tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function live_items(v)
  local items = {}
  if v then
    for r, t, e in string.gmatch(v, '(%d+)%.(%w)%.(%d+)') do
      local x = tonumber(e)
      if x == 0 or x > now then items[#items + 1] = {r, t, x} end
    end
  end
  return items
end
local expiry_texts = {}
local function expiry_text(ms)
  local t = expiry_texts[ms]
  if not t then
    t = '0'
    if ms > 0 then t = string.format('%d', now + ms) end
    expiry_texts[ms] = t
  end
  return t
end
local function raw_count(v)
  local _, spaces = string.gsub(v, ' ', ' ')
  return spaces + 1
end
local function encode(items)
  local parts = {}
  for i, it in ipairs(items) do parts[i] = it[1] .. '.' .. it[2] .. '.' .. string.format('%d', it[3]) end
  return table.concat(parts, ' ')
end
-- An entry key must live ms more (0: forever); before is its PTTL before this write (-2: it is new).
local function extend(k, ms, before)
  if ms == 0 then
    if before >= 0 then redis.call('PERSIST', k) end
  elseif before == -2 or (before >= 0 and before < ms) then
    redis.call('PEXPIRE', k, ms)
  end
end
-- Pod sets that adds touched: their PTTL before the first add, the longest life they now need, and the
-- keys to add to them (one SADD per 1000 at the end, not one per key).
local sets = {}
local function note_set(pod, ms, k)
  local name = prefix .. 'p:' .. pod
  local s = sets[name]
  if not s then
    s = {before = redis.call('PTTL', name), need = ms, keys = {}}
    sets[name] = s
  elseif s.need ~= 0 and (ms == 0 or ms > s.need) then
    s.need = ms
  end
  s.keys[k] = true
end
local function flush_sets()
  for name, s in pairs(sets) do
    local page = {}
    for k in pairs(s.keys) do
      page[#page + 1] = k
      if #page == 1000 then
        redis.call('SADD', name, unpack(page))
        page = {}
      end
    end
    if #page > 0 then redis.call('SADD', name, unpack(page)) end
    s.keys = {}
  end
end
-- Writes pod's items of key k; none left drops the field and k from the pod's set (and from the keys
-- still to be added to it).
local function store(k, pod, items)
  if #items == 0 then
    redis.call('HDEL', k, pod)
    local name = prefix .. 'p:' .. pod
    if sets[name] then sets[name].keys[k] = nil end
    redis.call('SREM', name, k)
  else
    redis.call('HSET', k, pod, encode(items))
  end
end
-- Drops every pod's expired items of k.
local function prune(k)
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    local items = live_items(all[i + 1])
    if #items ~= raw_count(all[i + 1]) then store(k, all[i], items) end
  end
end
-- Calls fn(entry key) for every member of pod's set (SSCAN pages; the set may shrink meanwhile).
local function each_key(pod, fn)
  local set, cursor, pages = prefix .. 'p:' .. pod, '0', 0
  repeat
    local page = redis.call('SSCAN', set, cursor, 'COUNT', 256)
    cursor, pages = page[1], pages + 1
    for _, ek in ipairs(page[2]) do fn(set, ek) end
  until cursor == '0' or pages > 100000000
  return set
end

local function apply(kind, k, pod, rank, tier, ttl)
  if kind == 'a' or kind == 's' then
    local spec = kind == 's'
    local ms = key_ttl
    if spec then ms = ttl end
    local expiry = 0
    if ms > 0 then expiry = now + ms end
    local before = redis.call('PTTL', k)
    if before == -2 then
      -- a new key, the common case: one item
      redis.call('HSET', k, pod, rank .. '.' .. tier .. '.' .. expiry_text(ms))
      if ms > 0 then redis.call('PEXPIRE', k, ms) end
      note_set(pod, ms, k)
    else
      local old = redis.call('HGET', k, pod)
      local out, found, real = {}, false, false
      for _, it in ipairs(live_items(old)) do
        if it[2] ~= 's' then real = true end
        if it[1] == rank and it[2] == tier then
          it[3] = expiry
          found = true
        end
        -- the engine's item replaces the routing decision
        if spec or it[2] ~= 's' then out[#out + 1] = it end
      end
      -- a pod holding the key for real gains nothing from a speculative item
      if not (spec and real) then
        if not found then out[#out + 1] = {rank, tier, expiry} end
        redis.call('HSET', k, pod, encode(out))
        extend(k, ms, before)
        note_set(pod, ms, k)
        if not old then
          local n = redis.call('HLEN', k)
          if n >= 2 and bit.band(n, n - 1) == 0 then prune(k) end
        end
      end
    end
  elseif kind == 'r' then
    local old = redis.call('HGET', k, pod)
    if old then
      local out = {}
      for _, it in ipairs(live_items(old)) do
        if not (it[1] == rank and it[2] == tier) then out[#out + 1] = it end
      end
      if #out ~= raw_count(old) then store(k, pod, out) end
    end
  elseif kind == 'c' then
    flush_sets()
    each_key(pod, function(set, ek)
      if #ek ~= #k + 18 or string.sub(ek, 1, #k) ~= k then return end
      local old = redis.call('HGET', ek, pod)
      if not old then
        redis.call('SREM', set, ek)
        return
      end
      local out = {}
      for _, it in ipairs(live_items(old)) do
        if it[2] == 's' or it[1] ~= rank then out[#out + 1] = it end
      end
      if #out ~= raw_count(old) then store(ek, pod, out) end
    end)
  elseif kind == 'p' then
    flush_sets()
    local set = each_key(pod, function(set, ek) redis.call('HDEL', ek, pod) end)
    redis.call('DEL', set)
  end
end

local i = 3
while i + 5 <= #ARGV do
  local kind, pod, rank, tier, ttl, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  for j = i + 6, i + 5 + n do apply(kind, ARGV[j], pod, rank, tier, ttl) end
  i = i + 6 + n
end
flush_sets()
-- Pod sets outlive their items: extended only ever later; a recreated set (its TTL gone) gets one again.
for name, s in pairs(sets) do
  local cur = redis.call('PTTL', name)
  if s.need == 0 then
    if cur >= 0 then redis.call('PERSIST', name) end
  elseif (cur == -1 and s.before ~= -1) or (cur >= 0 and cur < s.need) then
    redis.call('PEXPIRE', name, s.need)
  end
end
return 1
)lua";

struct ReplyFree {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// A lost connection inside a round trip: exchange() reconnects and retries.
struct Lost {
    std::string why;
};

timeval to_timeval(uint32_t ms) {
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

bool parse_uint(std::string_view s, uint64_t max, uint64_t& out) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

[[noreturn]] void bad_url(std::string_view url, const std::string& why) {
    fail(KVC_ERR_INVALID_ARGUMENT, "index: redis url \"" + std::string(url) + "\": " + why);
}

kvc_status status_of_error_reply(std::string_view msg) {
    return msg.starts_with("OOM") ? KVC_ERR_CAPACITY : KVC_ERR_IO;
}

// Live items of one HGETALL reply (field, value, field, value, ...) at server time now_ms.
void parse_items(const redisReply& r, uint64_t now_ms, std::vector<RedisItem>& out) {
    out.clear();
    if (r.type != REDIS_REPLY_ARRAY) return;
    for (size_t f = 0; f + 1 < r.elements; f += 2) {
        const redisReply* name = r.element[f];
        const redisReply* value = r.element[f + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) continue;
        const std::string_view pod(name->str, name->len);
        std::string_view v(value->str, value->len);
        while (!v.empty()) {
            const size_t sp = v.find(' ');
            const std::string_view item = v.substr(0, sp);
            v = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
            // rank '.' tier '.' expiry; anything else is not the index's and is skipped
            const size_t d1 = item.find('.');
            if (d1 == std::string_view::npos || d1 + 3 > item.size() || item[d1 + 2] != '.') continue;
            uint64_t rank = 0, expiry = 0;
            if (!parse_uint(item.substr(0, d1), kMaxRank, rank) || !parse_uint(item.substr(d1 + 3), UINT64_MAX, expiry))
                continue;
            if (expiry != 0 && expiry <= now_ms) continue;
            const char t = item[d1 + 1];
            RedisItem it{pod, static_cast<uint16_t>(rank), Medium::kGpu, t == 's'};
            if (!it.speculative) {
                if (t < '0' || t >= char('0' + kNumTiers)) continue;
                it.tier = static_cast<Medium>(t - '0');
            }
            out.push_back(it);
        }
    }
}

}  // namespace

// ---- the url ----------------------------------------------------------------------------------------
RedisEndpoint parse_redis_url(std::string_view url) {
    RedisEndpoint ep;
    const size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) bad_url(url, "expected redis://, valkey:// or unix://");
    const std::string_view scheme = url.substr(0, scheme_end);
    std::string_view rest = url.substr(scheme_end + 3);
    if (scheme == "rediss" || scheme == "valkeys")
        fail(KVC_ERR_UNSUPPORTED, "index: redis url \"" + std::string(url) + "\": TLS is not supported (hiredis 0.14)");
    if (scheme == "unix") {
        std::string_view path = rest, query;
        if (const size_t q = rest.find('?'); q != std::string_view::npos) {
            path = rest.substr(0, q);
            query = rest.substr(q + 1);
        }
        if (path.empty() || path[0] != '/') bad_url(url, "a unix socket needs an absolute path (unix:///path)");
        if (!query.empty()) {
            uint64_t db = 0;
            if (!query.starts_with("db=") || !parse_uint(query.substr(3), 1u << 20, db))
                bad_url(url, "the only query is db=N");
            ep.db = static_cast<int>(db);
        }
        ep.unix_path = std::string(path);
        ep.display = ep.unix_path;
        return ep;
    }
    if (scheme != "redis" && scheme != "valkey") bad_url(url, "expected redis://, valkey:// or unix://");
    if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        const size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) bad_url(url, "credentials are user:password@ or :password@");
        ep.user = std::string(userinfo.substr(0, colon));
        ep.password = std::string(userinfo.substr(colon + 1));
        rest = rest.substr(at + 1);
    }
    std::string_view hostport = rest, db;
    if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        db = rest.substr(slash + 1);
    }
    std::string_view port;
    if (hostport.starts_with("[")) {
        const size_t close = hostport.find(']');
        if (close == std::string_view::npos) bad_url(url, "unclosed [ of an IPv6 address");
        ep.host = std::string(hostport.substr(1, close - 1));
        const std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') bad_url(url, "expected :port after ]");
            port = after.substr(1);
            if (port.empty()) bad_url(url, "empty port");
        }
    } else {
        const size_t colon = hostport.find(':');
        ep.host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = hostport.substr(colon + 1);
            if (port.empty()) bad_url(url, "empty port");
        }
    }
    if (ep.host.empty()) bad_url(url, "no host");
    if (ep.host.find_first_of("/?#@ ") != std::string::npos) bad_url(url, "malformed host");
    if (!port.empty()) {
        uint64_t p = 0;
        if (!parse_uint(port, 65535, p) || p == 0) bad_url(url, "port must be 1..65535");
        ep.port = static_cast<int>(p);
    }
    if (!db.empty()) {
        uint64_t d = 0;
        if (!parse_uint(db, 1u << 20, d)) bad_url(url, "database must be a number");
        ep.db = static_cast<int>(d);
    }
    ep.display = (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
    return ep;
}

// ---- connections ----------------------------------------------------------------------------------------
struct RedisStore::Conn {
    redisContext* ctx = nullptr;
    bool ever = false;  // connected before: the next connect is a reconnect
    ~Conn() { drop(); }
    void drop() noexcept {
        if (ctx != nullptr) redisFree(ctx);
        ctx = nullptr;
    }
};

// A pooled connection for the length of one call.
struct RedisStore::Lease {
    RedisStore& store;
    std::unique_ptr<Conn> conn;
    explicit Lease(RedisStore& s) : store(s), conn(s.acquire()) {}
    ~Lease() { store.release(std::move(conn)); }
};

std::unique_ptr<RedisStore::Conn> RedisStore::acquire() {
    std::unique_lock lock(mu_);
    freed_.wait(lock, [&] { return !idle_.empty() || open_ < config_.max_connections; });
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
    }
    ++open_;
    return std::make_unique<Conn>();
}

void RedisStore::release(std::unique_ptr<Conn> conn) noexcept {
    if (!conn) return;
    {
        std::lock_guard lock(mu_);
        idle_.push_back(std::move(conn));
    }
    freed_.notify_one();
}

void RedisStore::connect(Conn& conn) {
    std::string why;
    uint32_t backoff_ms = 10;
    for (uint32_t attempt = 0; attempt < config_.reconnect_attempts; ++attempt) {
        if (attempt != 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
            backoff_ms = std::min<uint32_t>(backoff_ms * 2, 1000);
        }
        const timeval tv = to_timeval(config_.connect_timeout_ms);
        redisContext* c = endpoint_.unix_path.empty()
                              ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv)
                              : redisConnectUnixWithTimeout(endpoint_.unix_path.c_str(), tv);
        if (c == nullptr) {
            why = "out of memory";
            continue;
        }
        conn.ctx = c;
        if (c->err != 0) {
            why = c->errstr;
            conn.drop();
            continue;
        }
        redisSetTimeout(c, to_timeval(config_.command_timeout_ms));
        // AUTH, SELECT and the script; a refusal is final, a lost connection is tried again.
        auto command = [&](std::initializer_list<std::string_view> args) -> Reply {
            std::vector<const char*> argv;
            std::vector<size_t> len;
            for (std::string_view a : args) {
                argv.push_back(a.data());
                len.push_back(a.size());
            }
            Reply r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), len.data())));
            if (!r) throw Lost{c->errstr};
            if (r->type == REDIS_REPLY_ERROR) {
                const std::string msg(r->str, r->len);
                fail(status_of_error_reply(msg), "index: redis " + endpoint_.display + ": " +
                                                     std::string(*args.begin()) + ": " + msg);
            }
            return r;
        };
        try {
            if (!endpoint_.password.empty()) {
                if (endpoint_.user.empty()) command({"AUTH", endpoint_.password});
                else command({"AUTH", endpoint_.user, endpoint_.password});
            }
            if (endpoint_.db != 0) command({"SELECT", std::to_string(endpoint_.db)});
            Reply sha = command({"SCRIPT", "LOAD", kScript});
            if (sha->type == REDIS_REPLY_STRING && script_sha_.empty()) script_sha_.assign(sha->str, sha->len);
        } catch (const Lost& lost) {
            why = lost.why;
            conn.drop();
            continue;
        } catch (...) {
            conn.drop();
            throw;
        }
        if (conn.ever) reconnects_.fetch_add(1, std::memory_order_relaxed);
        conn.ever = true;
        return;
    }
    fail(KVC_ERR_IO, "index: redis " + endpoint_.display + ": cannot connect: " + why + " (" +
                         std::to_string(config_.reconnect_attempts) + " attempts)");
}

template <class Fn>
void RedisStore::exchange(Conn& conn, bool& retried, const char* what, Fn&& fn) {
    for (int round = 0; round < 2; ++round) {
        try {
            if (conn.ctx == nullptr) connect(conn);
            round_trips_.fetch_add(1, std::memory_order_relaxed);
            fn(conn);
            return;
        } catch (const Lost& lost) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            conn.drop();
            if (retried)
                fail(KVC_ERR_IO, "index: redis " + endpoint_.display + ": " + what + ": connection lost: " + lost.why);
            retried = true;
        } catch (const Error& e) {
            if (e.status() == KVC_ERR_IO) errors_.fetch_add(1, std::memory_order_relaxed);
            throw;
        }
    }
}

RedisStore::RedisStore(const RedisConfig& config) : config_(config), endpoint_(parse_redis_url(config.url)) {
    Lease lease(*this);
    connect(*lease.conn);
    if (script_sha_.empty()) fail(KVC_ERR_IO, "index: redis " + endpoint_.display + ": SCRIPT LOAD gave no digest");
}

RedisStore::~RedisStore() = default;

// ---- keys -------------------------------------------------------------------------------------------------
std::string RedisStore::model_prefix(std::string_view model) const {
    std::string k;
    k.reserve(config_.key_prefix.size() + 3 + model.size() + 18);
    k += config_.key_prefix;
    k += "b:";
    k += model;
    k += ':';
    return k;
}

std::string RedisStore::entry_key(std::string_view model, KeyKind kind, uint64_t key) const {
    std::string k = model_prefix(model);
    k += kind == KeyKind::kEngine ? 'e' : 'r';
    k += ':';
    static constexpr char kHex[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4) k += kHex[(key >> shift) & 15];
    return k;
}

// ---- writes -------------------------------------------------------------------------------------------------
void RedisStore::write(std::span<const RedisWrite> writes) {
    if (writes.empty()) return;
    // Numbers and one-character arguments go to one buffer first; the pointers are taken once it is complete.
    std::string buf;
    struct Arg {
        const char* ptr;  // nullptr: at offset in buf
        size_t off, len;
    };
    std::vector<Arg> args;
    args.reserve(5 + writes.size() * 7);
    auto own = [&](std::string_view s) {
        args.push_back(Arg{nullptr, buf.size(), s.size()});
        buf += s;
    };
    auto ref = [&](std::string_view s) { args.push_back(Arg{s.data(), 0, s.size()}); };
    ref("EVALSHA");
    ref(script_sha_);
    ref("0");
    ref(config_.key_prefix);
    own(std::to_string(config_.key_ttl_ms));
    // Runs of writes equal but for their key share one header; its count is filled in when the run ends.
    const RedisWrite* run = nullptr;
    size_t count_arg = 0, run_keys = 0;
    auto end_run = [&] {
        if (run == nullptr) return;
        const std::string n = std::to_string(run_keys);
        args[count_arg] = Arg{nullptr, buf.size(), n.size()};
        buf += n;
    };
    for (const RedisWrite& w : writes) {
        const bool spec = w.kind == RedisWrite::Kind::kAddSpeculative;
        if (run == nullptr || w.kind != run->kind || w.pod != run->pod || w.rank != run->rank || w.tier != run->tier ||
            w.ttl_ms != run->ttl_ms) {
            end_run();
            run = &w;
            run_keys = 0;
            const char kind = static_cast<char>(w.kind);
            own(std::string_view(&kind, 1));
            ref(w.pod);
            own(spec ? "0" : std::to_string(w.rank));
            const char tier = spec ? 's' : static_cast<char>('0' + w.tier);
            own(std::string_view(&tier, 1));
            own(std::to_string(w.ttl_ms));
            count_arg = args.size();
            args.push_back(Arg{});
        }
        ref(w.key);
        ++run_keys;
    }
    end_run();
    std::vector<const char*> argv(args.size());
    std::vector<size_t> len(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
        argv[i] = args[i].ptr != nullptr ? args[i].ptr : buf.data() + args[i].off;
        len[i] = args[i].len;
    }
    Lease lease(*this);
    bool retried = false;
    exchange(*lease.conn, retried, "write", [&](Conn& c) {
        auto run = [&]() {
            Reply r(static_cast<redisReply*>(redisCommandArgv(c.ctx, static_cast<int>(argv.size()), argv.data(), len.data())));
            if (!r) throw Lost{c.ctx->errstr};
            return r;
        };
        Reply r = run();
        if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
            // A restarted or flushed server: the script text instead of its digest (EVAL caches it again).
            argv[0] = "EVAL";
            len[0] = 4;
            argv[1] = kScript.data();
            len[1] = kScript.size();
            r = run();
            argv[0] = "EVALSHA";
            len[0] = 7;
            argv[1] = script_sha_.data();
            len[1] = script_sha_.size();
        }
        if (r->type == REDIS_REPLY_ERROR) {
            const std::string msg(r->str, r->len);
            fail(status_of_error_reply(msg), "index: redis " + endpoint_.display + ": write: " + msg);
        }
    });
}

// ---- reads --------------------------------------------------------------------------------------------------
void RedisStore::read(std::span<const std::string> keys, const Visitor& visit) {
    if (keys.empty()) return;
    Lease lease(*this);
    bool retried = false;
    uint64_t now_ms = 0;
    bool have_time = false, stop = false;
    std::vector<RedisItem> items;
    // Replies are visited as they arrive (a window's replies all held at once cost more in cache misses
    // than the round trip saves); next is the first key not yet visited, where a retried round trip
    // starts again.
    size_t next = 0, window = config_.read_window;
    for (size_t guard = 0; !stop && next < keys.size() && guard <= 2 * keys.size(); ++guard) {
        const size_t end = std::min(keys.size(), next + window);
        exchange(*lease.conn, retried, "read", [&](Conn& c) {
            const bool ask_time = !have_time;
            if (ask_time) {
                const char* argv[] = {"TIME"};
                const size_t len[] = {4};
                redisAppendCommandArgv(c.ctx, 1, argv, len);
            }
            for (size_t i = next; i < end; ++i) {
                const char* argv[] = {"HGETALL", keys[i].data()};
                const size_t len[] = {7, keys[i].size()};
                redisAppendCommandArgv(c.ctx, 2, argv, len);
            }
            auto get = [&]() {
                void* raw = nullptr;
                if (redisGetReply(c.ctx, &raw) != REDIS_OK) throw Lost{c.ctx->errstr};
                return Reply(static_cast<redisReply*>(raw));
            };
            if (ask_time) {
                const Reply t = get();
                uint64_t sec = 0, us = 0;
                if (t->type != REDIS_REPLY_ARRAY || t->elements != 2 || t->element[0]->type != REDIS_REPLY_STRING ||
                    !parse_uint({t->element[0]->str, t->element[0]->len}, UINT64_MAX / 2000, sec) ||
                    !parse_uint({t->element[1]->str, t->element[1]->len}, 999999, us)) {
                    c.drop();  // the window's replies are unread
                    fail(KVC_ERR_IO, "index: redis " + endpoint_.display + ": TIME gave no time");
                }
                now_ms = sec * 1000 + us / 1000;
                have_time = true;
            }
            std::string error;
            for (size_t i = next; i < end; ++i) {
                const Reply r = get();
                if (stop) continue;  // read and dropped: the connection stays in step
                if (r->type == REDIS_REPLY_ERROR) {
                    error.assign(r->str, r->len);
                    stop = true;
                    continue;
                }
                parse_items(*r, now_ms, items);
                next = i + 1;
                try {
                    stop = !visit(i, items);
                } catch (...) {
                    c.drop();  // the window's remaining replies are unread
                    throw;
                }
            }
            if (!error.empty())
                fail(status_of_error_reply(error), "index: redis " + endpoint_.display + ": read: " + error);
        });
        window = std::min<size_t>(window * config_.read_window_growth, keys.size());
    }
}

}  // namespace kvcore::index

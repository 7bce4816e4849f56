// SPDX-License-Identifier: Apache-2.0
// The cluster index's Redis mode (index.h, "Redis mode"; redis_store.h) against a real redis-server that
// each test starts on 127.0.0.1 on a free port: replicas sharing one index agree with an in-memory index
// fed the same events, clears and removals cross replicas and leave nothing behind in the server,
// speculative entries and key TTLs expire on the server's clock, and a server restarted mid-run fails
// calls with KVC_ERR_IO until it is back, with nothing of a failed batch lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "common/error.h"
#include "index/event_decoder.h"
#include "index/index.h"
#include "pool/pool.h"
#include "redis_server.h"

namespace kvcore::index {
namespace {

using kvcore::testing::RedisServer;
using pool::HashAlgo;

std::vector<int32_t> tokens_from(uint32_t seed, size_t n) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % 50000);
    return t;
}

// A kvcore Pool hashing as vLLM does, as the engine of one pod: its events are encoded as vLLM encodes
// them and decoded again, so the index ingests real batches.
struct Engine {
    pool::Pool pool;
    explicit Engine(uint32_t blocks)
        : pool(pool::PoolConfig{.num_blocks = blocks,
                                .block_size = 16,
                                .hash_algo = HashAlgo::kSha256Cbor,
                                .hash_seed = "42",
                                .events = true}) {}
    EventBatch run(const std::vector<int32_t>& prompt) {
        const auto id = pool.create_sequence(prompt, pool::SequenceOptions{});
        pool.allocate(id, prompt.size());
        pool.free_sequence(id);
        const auto bytes = pool.encode_events(pool::EventEncoding::kArray);
        pool.clear_events();
        return decode_event_batch(bytes);
    }
};

IndexConfig memory_config() { return IndexConfig{.hash_algo = HashAlgo::kXxh3, .hash_seed = "1234", .block_size = 16}; }

// One pod's holders of a key as comparable values, by name.
using NamedHolder = std::tuple<std::string, uint16_t, int, bool>;
std::vector<NamedHolder> named(const Index& index, std::span<const Holder> holders) {
    std::vector<NamedHolder> out;
    for (const Holder& h : holders) out.emplace_back(index.pod_name(h.pod), h.rank, int(h.tier), h.speculative);
    std::sort(out.begin(), out.end());
    return out;
}

uint32_t blocks_of(const Index& index, ModelId model, std::span<const uint64_t> keys, const std::string& pod) {
    PodScore out[1];
    const PodId cand[1] = {index.find_pod(pod)};
    index.score(model, keys, cand, out);
    return out[0].blocks;
}

class IndexRedis : public ::testing::Test {
protected:
    void SetUp() override {
        if (RedisServer::binary().empty())
            GTEST_SKIP() << "redis-server is not installed (Debian: apt-get install redis-server): the Redis backend "
                            "tests need a real server";
        server = std::make_unique<RedisServer>();
        ASSERT_TRUE(server->available()) << "no temporary directory or free port";
        ASSERT_TRUE(server->start()) << "redis-server did not answer PING on port " << server->port();
    }
    [[nodiscard]] IndexConfig redis_config() const {
        IndexConfig c = memory_config();
        c.redis.url = server->url();
        return c;
    }
    std::unique_ptr<RedisServer> server;
};

// Prompts sharing prefixes, over two pods (pod-b on data-parallel rank 1) whose small pools evict: the
// replica that ingests nothing scores and looks up exactly what an in-memory index fed the same batches
// does, for candidates and for every pod.
TEST_F(IndexRedis, ReplicasAgreeWithTheInMemoryIndex) {
    Index writer(redis_config()), reader(redis_config()), memory(memory_config());
    const ModelId mw = writer.intern_model("llama"), mr = reader.intern_model("llama"), mm = memory.intern_model("llama");
    Engine engine_a(48), engine_b(48);
    const auto system = tokens_from(1, 20 * 16);
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 16; ++i) {
        std::vector<int32_t> p(system.begin(), system.begin() + (i * 53) % system.size());
        const auto tail = tokens_from(100 + i, 40 + i * 11);
        p.insert(p.end(), tail.begin(), tail.end());
        prompts.push_back(std::move(p));
    }
    uint32_t nonzero_a = 0, nonzero_b = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
        const std::string pod = i % 3 == 2 ? "pod-b" : "pod-a";
        EventBatch batch = (pod == "pod-a" ? engine_a : engine_b).run(prompts[i]);
        if (pod == "pod-b") batch.data_parallel_rank = 1;
        writer.apply(writer.intern_pod(pod), mw, batch);
        memory.apply(memory.intern_pod(pod), mm, batch);
        for (size_t q = 0; q <= i; ++q) {
            const auto keys = memory.request_keys(prompts[q], {});
            ASSERT_EQ(keys, reader.request_keys(prompts[q], {}));
            for (const char* name : {"pod-a", "pod-b"}) {
                const uint32_t expected = memory.find_pod(name) == Index::kNoPod ? 0 : blocks_of(memory, mm, keys, name);
                ASSERT_EQ(blocks_of(reader, mr, keys, name), expected) << name << " prompt " << q << " after " << i;
                (std::string(name) == "pod-a" ? nonzero_a : nonzero_b) += expected != 0;
            }
            // Every pod holding key 0, best first, with the same scores.
            PodScore open_r[4], open_m[4];
            const size_t nr = reader.score(mr, keys, {}, open_r), nm = memory.score(mm, keys, {}, open_m);
            ASSERT_EQ(nr, nm);
            for (size_t k = 0; k < nr; ++k) {
                EXPECT_EQ(reader.pod_name(open_r[k].pod), memory.pod_name(open_m[k].pod));
                EXPECT_EQ(open_r[k].blocks, open_m[k].blocks);
                EXPECT_DOUBLE_EQ(open_r[k].score, open_m[k].score);
            }
            const LookupResult lr = reader.lookup(mr, keys, {}), lm = memory.lookup(mm, keys, {});
            ASSERT_EQ(lr.keys_found, lm.keys_found);
            for (size_t k = 0; k < lr.keys_found; ++k) {
                EXPECT_EQ(named(reader, std::span(lr.holders).subspan(lr.offsets[k], lr.offsets[k + 1] - lr.offsets[k])),
                          named(memory, std::span(lm.holders).subspan(lm.offsets[k], lm.offsets[k + 1] - lm.offsets[k])));
            }
        }
    }
    EXPECT_GT(nonzero_a, 10u);
    EXPECT_GT(nonzero_b, 3u);
    const IndexCounters c = writer.counters();
    EXPECT_EQ(c.batches, prompts.size());
    EXPECT_GT(c.engine_blocks, 0u);  // the mapping stays in the writer
    EXPECT_EQ(c.keys, 0u);           // the entries are the server's
    EXPECT_EQ(c.redis_errors, 0u);
}

// AllBlocksCleared from one replica clears that (pod, rank, model) for all; remove_pod on the other
// replica (which never saw the pod's batches) removes the rest; then nothing is left in the server.
TEST_F(IndexRedis, ClearAndRemovePodCrossReplicasAndLeaveNothingBehind) {
    Index a(redis_config()), b(redis_config());
    const ModelId ma = a.intern_model("llama"), mb = b.intern_model("llama");
    const ModelId other = a.intern_model("mistral");
    Engine e0(256), e1(256), e2(256);
    const auto prompt = tokens_from(7, 8 * 16 + 3);
    const PodId pa = a.intern_pod("pod-a");
    a.apply(pa, ma, e0.run(prompt));
    EventBatch rank1 = e1.run(prompt);
    rank1.data_parallel_rank = 1;
    a.apply(pa, ma, rank1);
    a.apply(pa, other, e2.run(prompt));
    a.apply(a.intern_pod("pod-c"), ma, Engine(256).run(prompt));
    const auto keys = b.request_keys(prompt, {});
    ASSERT_EQ(keys.size(), 8u);
    auto ranks_of = [&](ModelId m, const Index& index) {
        std::vector<uint16_t> r;
        for (const Holder& h : index.holders(m, keys[3]))
            if (index.pod_name(h.pod) == "pod-a") r.push_back(h.rank);
        std::sort(r.begin(), r.end());
        return r;
    };
    EXPECT_EQ(ranks_of(mb, b), (std::vector<uint16_t>{0, 1}));
    EventBatch clear;
    clear.events.emplace_back(AllBlocksCleared{});
    a.apply(pa, ma, clear);  // rank 0 of llama only
    EXPECT_EQ(ranks_of(mb, b), (std::vector<uint16_t>{1}));
    EXPECT_EQ(ranks_of(b.intern_model("mistral"), b), (std::vector<uint16_t>{0}));
    EXPECT_EQ(blocks_of(b, mb, keys, "pod-c"), 8u);

    b.remove_pod(b.find_pod("pod-a"));
    EXPECT_TRUE(ranks_of(mb, a).empty());
    EXPECT_TRUE(ranks_of(other, a).empty());
    EXPECT_EQ(blocks_of(a, ma, keys, "pod-c"), 8u);
    EXPECT_GT(server->integer("DBSIZE"), 0);
    b.remove_pod(b.find_pod("pod-c"));
    EXPECT_EQ(blocks_of(a, ma, keys, "pod-c"), 0u);
    EXPECT_EQ(server->integer("DBSIZE"), 0) << "entries or pod sets left in the server";
}

// Speculative entries: seen by the other replica, replaced by the engine's event, expired on the
// server's clock; a pod that holds a key for real gains no speculative holder for it.
TEST_F(IndexRedis, SpeculativeEntriesAreSharedReplacedAndExpire) {
    Index a(redis_config()), b(redis_config());
    const ModelId ma = a.intern_model("llama"), mb = b.intern_model("llama");
    const auto prompt = tokens_from(11, 5 * 16 + 1);
    const auto keys = a.request_keys(prompt, {});
    ASSERT_EQ(keys.size(), 5u);
    const PodId pc = a.intern_pod("pod-c");
    // Checks before the TTL runs out are guarded by the time before the write, waits by the time after it.
    const auto before = std::chrono::steady_clock::now();
    a.add_speculative(ma, keys, pc, 1000'000'000);  // 1 s
    const auto after = std::chrono::steady_clock::now();
    EXPECT_EQ(blocks_of(b, mb, keys, "pod-c"), 5u);
    const LookupResult seen = b.lookup(mb, keys, {});
    ASSERT_EQ(seen.keys_found, 5u);
    EXPECT_TRUE(seen.holders[0].speculative);
    // The engine stores the first 3 blocks: those holders become real.
    Engine engine(256);
    const std::vector<int32_t> head(prompt.begin(), prompt.begin() + 3 * 16 + 1);
    a.apply(pc, ma, engine.run(head));
    EXPECT_EQ(named(b, b.holders(mb, keys[0])), (std::vector<NamedHolder>{{"pod-c", 0, 0, false}}));
    EXPECT_EQ(named(b, b.holders(mb, keys[4])), (std::vector<NamedHolder>{{"pod-c", 0, 0, true}}));
    b.add_speculative(mb, std::span(keys).first(1), b.find_pod("pod-c"), 1000'000'000);
    EXPECT_EQ(named(a, a.holders(ma, keys[0])), (std::vector<NamedHolder>{{"pod-c", 0, 0, false}}));
    ASSERT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(900)) << "the machine is too slow";
    std::this_thread::sleep_until(after + std::chrono::milliseconds(1300));
    EXPECT_TRUE(b.holders(mb, keys[4]).empty());
    EXPECT_EQ(blocks_of(b, mb, keys, "pod-c"), 3u);
    EXPECT_EQ(blocks_of(a, ma, keys, "pod-c"), 3u);
}

// With a key TTL, holders nobody rewrites expire and their keys leave the server.
TEST_F(IndexRedis, KeyTtlExpiresHoldersAndKeys) {
    IndexConfig config = redis_config();
    config.redis.key_ttl_ms = 800;
    Index a(config), b(config);
    const ModelId ma = a.intern_model("llama"), mb = b.intern_model("llama");
    const auto prompt = tokens_from(13, 6 * 16 + 1);
    const auto keys = b.request_keys(prompt, {});
    const EventBatch batch = Engine(256).run(prompt);
    const auto before = std::chrono::steady_clock::now();
    a.apply(a.intern_pod("pod-a"), ma, batch);
    const auto stored = std::chrono::steady_clock::now();
    const uint32_t fresh = blocks_of(b, mb, keys, "pod-a");
    const long long live_keys = server->integer("DBSIZE");
    ASSERT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(700)) << "the machine is too slow";
    EXPECT_EQ(fresh, 6u);
    EXPECT_EQ(live_keys, 7) << "6 entries and the pod's set";
    std::this_thread::sleep_until(stored + std::chrono::milliseconds(1100));
    EXPECT_EQ(blocks_of(b, mb, keys, "pod-a"), 0u);
    // The server drops expired keys (KEYS skips them at once; DBSIZE once its expiry cycle ran).
    EXPECT_EQ(server->integer("KEYS *"), 0);
    long long left = -1;
    for (int i = 0; i < 100 && left != 0; ++i) {
        left = server->integer("DBSIZE");
        if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(left, 0);
}

// A key kept alive by some pods sheds another pod's expired items: the writer that brings the key's
// field count to a power of two prunes them (raw field counts read from the server).
TEST_F(IndexRedis, ExpiredItemsOfOtherPodsArePruned) {
    Index a(redis_config());
    const ModelId m = a.intern_model("llama");
    const auto prompt = tokens_from(17, 1 * 16 + 1);
    const auto keys = a.request_keys(prompt, {});
    ASSERT_EQ(keys.size(), 1u);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(keys[0]));
    const std::string hlen = std::string("HLEN kvc:b:llama:r:") + hex;
    const auto before = std::chrono::steady_clock::now();
    a.add_speculative(m, keys, a.intern_pod("pod-a"), 300'000'000);  // 300 ms
    const auto after = std::chrono::steady_clock::now();
    a.apply(a.intern_pod("pod-b"), m, Engine(64).run(prompt));  // 2 fields: pruned, nothing expired yet
    EXPECT_EQ(server->integer(hlen.c_str()), 2);
    ASSERT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(250)) << "the machine is too slow";
    std::this_thread::sleep_until(after + std::chrono::milliseconds(450));
    EXPECT_EQ(named(a, a.holders(m, keys[0])), (std::vector<NamedHolder>{{"pod-b", 0, 0, false}}));
    a.apply(a.intern_pod("pod-c"), m, Engine(64).run(prompt));  // 3 fields: no pruning
    EXPECT_EQ(server->integer(hlen.c_str()), 3);
    a.apply(a.intern_pod("pod-d"), m, Engine(64).run(prompt));  // 4: pruned, pod-a's field goes
    EXPECT_EQ(server->integer(hlen.c_str()), 3);
    EXPECT_EQ(a.holders(m, keys[0]).size(), 3u);
}

// The byte budget in Redis mode is the server's maxmemory: with an LRU policy the server evicts the least
// recently used entries and the index goes on (recent prompts score in full, old ones lost blocks); with
// noeviction a batch over the limit is refused whole with KVC_ERR_CAPACITY.
TEST_F(IndexRedis, ServerMaxmemoryIsTheByteBudget) {
    IndexConfig config = redis_config();
    config.hash_algo = HashAlgo::kSha256Cbor;
    config.engine_keys_direct = true;  // batches of bare keys
    Index a(config);
    const ModelId m = a.intern_model("llama");
    const PodId pa = a.intern_pod("pod-a");
    const long long base = std::stoll(server->info("memory", "used_memory"));
    const long long limit = base + (2 << 20);
    (void)server->integer(("CONFIG SET maxmemory " + std::to_string(limit)).c_str());
    (void)server->integer("CONFIG SET maxmemory-policy allkeys-lru");
    std::mt19937_64 rng(5);
    std::vector<std::vector<uint64_t>> prompts;
    for (int b = 0; b < 80; ++b) {  // 40,000 keys: several times what 2 MiB hold
        std::vector<uint64_t> keys(500);
        for (auto& k : keys) k = rng();
        BlockStored stored;
        stored.block_hashes = keys;
        stored.block_size = 16;
        EventBatch batch;
        batch.events.emplace_back(std::move(stored));
        a.apply(pa, m, batch);
        prompts.push_back(std::move(keys));
    }
    EXPECT_GT(std::stoll(server->info("stats", "evicted_keys")), 0);
    EXPECT_LE(std::stoll(server->info("memory", "used_memory")), limit + (limit >> 4));
    // Redis's LRU is sampled, so the newest prompt may lose a key too; it keeps more than the oldest.
    const uint32_t newest = blocks_of(a, m, prompts.back(), "pod-a"), oldest = blocks_of(a, m, prompts.front(), "pod-a");
    EXPECT_LT(oldest, 500u);
    EXPECT_GT(newest, oldest);
    EXPECT_EQ(a.counters().redis_errors, 0u);

    (void)server->integer("CONFIG SET maxmemory-policy noeviction");
    std::vector<uint64_t> more(20000);
    for (auto& k : more) k = rng();
    BlockStored stored;
    stored.block_hashes = more;
    stored.block_size = 16;
    EventBatch batch;
    batch.events.emplace_back(std::move(stored));
    bool refused = false;
    for (int i = 0; i < 20 && !refused; ++i) {  // the server is at its limit already; bounded anyway
        try {
            a.apply(pa, m, batch);
        } catch (const Error& e) {
            refused = true;
            EXPECT_EQ(e.status(), KVC_ERR_CAPACITY);
            EXPECT_NE(std::string(e.what()).find("OOM"), std::string::npos) << e.what();
        }
    }
    EXPECT_TRUE(refused);
}

// The server is killed mid-run: writes and reads fail with KVC_ERR_IO naming it, the failed batch is
// kept; restarted (empty: no persistence) on the same port, calls succeed after reconnecting and the
// kept batch arrives before the next one.
TEST_F(IndexRedis, ServerRestartMidRun) {
    Index a(redis_config()), b(redis_config());
    const ModelId ma = a.intern_model("llama"), mb = b.intern_model("llama");
    const PodId pa = a.intern_pod("pod-a");
    Engine engine(1024);
    const auto p1 = tokens_from(21, 4 * 16 + 1), p2 = tokens_from(22, 5 * 16 + 1), p3 = tokens_from(23, 6 * 16 + 1);
    a.apply(pa, ma, engine.run(p1));
    const auto k1 = b.request_keys(p1, {}), k2 = b.request_keys(p2, {}), k3 = b.request_keys(p3, {});
    EXPECT_EQ(blocks_of(b, mb, k1, "pod-a"), 4u);

    server->stop();
    const std::string where = "127.0.0.1:" + std::to_string(server->port());
    try {
        a.apply(pa, ma, engine.run(p2));
        ADD_FAILURE() << "apply succeeded without a server";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_IO);
        EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    try {
        (void)blocks_of(b, mb, k1, "pod-a");
        ADD_FAILURE() << "score succeeded without a server";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_IO);
        EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    EXPECT_GT(a.counters().redis_errors, 0u);
    EXPECT_GT(b.counters().redis_errors, 0u);

    ASSERT_TRUE(server->start());
    EXPECT_EQ(blocks_of(b, mb, k1, "pod-a"), 0u);  // the server came back empty
    EXPECT_GE(b.counters().redis_reconnects, 1u);
    EXPECT_EQ(blocks_of(b, mb, k2, "pod-a"), 0u);  // the failed batch is not there yet
    a.apply(pa, ma, engine.run(p3));
    EXPECT_EQ(blocks_of(b, mb, k2, "pod-a"), 5u);  // ... and arrived with the next one
    EXPECT_EQ(blocks_of(b, mb, k3, "pod-a"), 6u);
    EXPECT_GE(a.counters().redis_reconnects, 1u);
}

// Reads go in pipelined windows (32 keys, then 4x): a 200-key prompt takes 3 round trips, one that misses
// at key 10 takes 1, and the one-round-trip-per-key setting takes one per key read.
TEST_F(IndexRedis, ReadsArePipelinedInGrowingWindowsAndStopEarly) {
    Index a(redis_config()), b(redis_config());
    IndexConfig per_key = redis_config();
    per_key.redis.read_window = 1;
    per_key.redis.read_window_growth = 1;
    Index c(per_key);
    const ModelId ma = a.intern_model("llama");
    const auto prompt = tokens_from(31, 200 * 16 + 1);
    a.apply(a.intern_pod("pod-a"), ma, Engine(1024).run(prompt));
    const auto keys = b.request_keys(prompt, {});
    ASSERT_EQ(keys.size(), 200u);
    auto trips = [](const Index& index, auto&& call) {
        const uint64_t before = index.counters().redis_round_trips;
        call();
        return index.counters().redis_round_trips - before;
    };
    const ModelId mb = b.intern_model("llama"), mc = c.intern_model("llama");
    EXPECT_EQ(trips(b, [&] { EXPECT_EQ(blocks_of(b, mb, keys, "pod-a"), 200u); }), 3u);
    EXPECT_EQ(trips(c, [&] { EXPECT_EQ(blocks_of(c, mc, keys, "pod-a"), 200u); }), 200u);
    auto partial = keys;
    partial[10] ^= 1;  // a key nobody holds
    EXPECT_EQ(trips(b, [&] { EXPECT_EQ(blocks_of(b, mb, partial, "pod-a"), 10u); }), 1u);
    EXPECT_EQ(trips(c, [&] { EXPECT_EQ(blocks_of(c, mc, partial, "pod-a"), 10u); }), 11u);
    EXPECT_EQ(trips(b, [&] { EXPECT_EQ(b.lookup(mb, partial, {}).keys_found, 10u); }), 1u);
    // A batch is one script: one round trip.
    EXPECT_EQ(trips(a, [&] { a.apply(a.find_pod("pod-a"), ma, Engine(1024).run(tokens_from(32, 40 * 16))); }), 1u);
}

// Urls: malformed ones are refused with the url in the message; an unreachable server fails with
// KVC_ERR_IO naming it; a unix socket works; a byte budget is refused in Redis mode.
TEST_F(IndexRedis, UrlsSocketsAndUnreachableServers) {
    for (const char* bad : {"redis:/127.0.0.1", "redis://", "redis://:6379", "redis://h:0", "redis://h:x", "redis://h/x",
                            "redis://user@h", "redis://[::1", "tcp://h:1", "unix://rel", "unix:///s?x=1"}) {
        IndexConfig c = memory_config();
        c.redis.url = bad;
        try {
            Index index(c);
            ADD_FAILURE() << bad << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), KVC_ERR_INVALID_ARGUMENT) << bad;
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
    IndexConfig budget = redis_config();
    budget.byte_budget = 1 << 20;
    EXPECT_THROW(Index{budget}, Error);

    RedisServer absent;  // a free port with nothing on it
    IndexConfig away = memory_config();
    away.redis.url = absent.url();
    try {
        Index index(away);
        ADD_FAILURE() << "connected to nothing";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_IO);
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(absent.port())), std::string::npos)
            << e.what();
    }

    IndexConfig unix_config = memory_config();
    unix_config.redis.url = "unix://" + server->socket_path() + "?db=2";
    Index over_socket(unix_config), over_tcp(redis_config());
    const auto prompt = tokens_from(41, 3 * 16 + 1);
    over_socket.apply(over_socket.intern_pod("pod-a"), over_socket.intern_model("m"), Engine(64).run(prompt));
    const auto keys = over_socket.request_keys(prompt, {});
    EXPECT_EQ(blocks_of(over_socket, over_socket.intern_model("m"), keys, "pod-a"), 3u);
    EXPECT_EQ(blocks_of(over_tcp, over_tcp.intern_model("m"), keys, "pod-a"), 0u);  // database 0
    IndexConfig db2 = redis_config();
    db2.redis.url += "/2";
    Index over_tcp2(db2);
    EXPECT_EQ(blocks_of(over_tcp2, over_tcp2.intern_model("m"), keys, "pod-a"), 3u);
    IndexConfig valkey = redis_config();
    valkey.redis.url = "valkey://127.0.0.1:" + std::to_string(server->port()) + "/2";  // the same protocol
    Index over_valkey_url(valkey);
    EXPECT_EQ(blocks_of(over_valkey_url, over_valkey_url.intern_model("m"), keys, "pod-a"), 3u);
}

// Scoring from several threads (pooled connections) while another replica ingests: no errors, and at
// the end every thread's view is the writer's.
TEST_F(IndexRedis, ConcurrentScorersWhileAnotherReplicaIngests) {
    IndexConfig config = redis_config();
    config.redis.max_connections = 2;  // 3 scorers share 2 connections
    Index writer(redis_config()), reader(config);
    const ModelId mw = writer.intern_model("llama"), mr = reader.intern_model("llama");
    const auto system = tokens_from(51, 30 * 16);
    std::atomic<bool> done{false};
    std::atomic<uint64_t> calls{0};
    std::vector<std::thread> scorers;
    const auto keys = reader.request_keys(system, {});
    for (int t = 0; t < 3; ++t) {
        scorers.emplace_back([&] {
            for (int i = 0; i < 2000 && !done.load(); ++i) {
                const uint32_t n = blocks_of(reader, mr, keys, "pod-a");
                EXPECT_LE(n, keys.size());
                calls.fetch_add(1);
            }
        });
    }
    Engine engine(1024);
    const PodId pa = writer.intern_pod("pod-a");
    for (size_t len = 16 + 1; len <= system.size(); len += 16)
        writer.apply(pa, mw, engine.run(std::vector<int32_t>(system.begin(), system.begin() + len)));
    done = true;
    for (auto& t : scorers) t.join();
    EXPECT_GT(calls.load(), 0u);
    EXPECT_EQ(blocks_of(reader, mr, keys, "pod-a"), keys.size() - 1);  // the pool keeps the last token's block open
    EXPECT_EQ(reader.counters().redis_errors, 0u);
}

}  // namespace
}  // namespace kvcore::index

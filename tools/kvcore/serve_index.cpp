// SPDX-License-Identifier: Apache-2.0
// `kvcore serve-index`: the router's cluster KV-block index as a sidecar. Engines' KV events come in over
// ZeroMQ (kvcore/index_subscriber.h) and feed a kvc_index; HTTP answers scoring queries (POST /score),
// Prometheus scrapes (GET /metrics) and health checks (GET /healthz). Built on the C API only, so what
// it does is what any embedder of libkvcore can do.
//
// HTTP is cpp-httplib (Debian's build). What a client sends is bounded before it is read (body size,
// header sizes, read timeouts, connections in flight), every input is checked before the index sees it,
// and each error is a JSON {"error": "..."} with a 4xx status; nothing a client sends reaches a path that
// can crash the process.
#include <fcntl.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "capi_calls.h"
#include "commands.h"
#include "kvcore/kvcore.h"

namespace kvcore::cli {

namespace {

// The pipe SIGINT/SIGTERM are written into (serve-index's wait for the end).
int stop_pipe[2] = {-1, -1};
extern "C" void stop_handler(int signal_number) {
    const unsigned char b = static_cast<unsigned char>(signal_number);
    const ssize_t written = write(stop_pipe[1], &b, 1);  // async-signal-safe; a full pipe already says stop
    (void)written;
}

using nlohmann::json;
constexpr const char* kCommand = "serve-index";

// Help text of each index counter, in kvc_index_counter order; the first kIndexGauges are "now" values.
constexpr size_t kIndexGauges = 7;
constexpr const char* kIndexCounterHelp[] = {
    "(model, key kind, key) entries in the index",
    "(key, pod, rank, tier) holders in the index",
    "Live speculative holders",
    "Bytes the index's byte budget counts",
    "Heap bytes held by the index's entries",
    "Engine keys mapped to request keys",
    "Blocks waiting for their parent",
    "Keys evicted by the byte budget",
    "Speculative holders expired",
    "Event batches applied",
    "Event batches refused (malformed, or a name past the limits)",
    "Blocks stored by events",
    "Blocks removed by events",
    "AllBlocksCleared events and clears",
    "Orphan blocks moved to their request keys",
    "Orphan blocks forgotten past the per-pod bound",
    "Events of an unknown type, skipped",
    "Scores answered by the score cache",
    "Scores computed with the score cache enabled",
    "Score cache results found stale by a write",
    "Redis round trips that failed",
    "Redis connections made again after one was lost",
};
// A counter appended to kvcore/index.h needs its help here (and the same for the subscriber's).
static_assert(std::size(kIndexCounterHelp) == KVC_INDEX_COUNTER_COUNT);
constexpr const char* kSubscriberCounterHelp[] = {
    "Well-formed live ZeroMQ messages received",
    "Batches passed on to the index (live and replayed)",
    "Malformed messages (not 3 frames, a bad seq frame, bad replay frames)",
    "Messages whose topic is not kv@<pod>@<model>",
    "Sequence gaps seen",
    "Replays asked of engines",
    "Batches received from replay answers",
    "Batches received twice, skipped",
    "Replays that timed out or were abandoned",
    "Batches never received (no replay, or replay incomplete)",
    "Engine restarts seen (sequence went back)",
    "Batches of topics past the stream limit",
    "Batches applied to the index, or queued on its ingest threads",
    "Payloads that are not a valid EventBatch",
    "Batches the index refused",
    "Engine restarts whose old entries were cleared",
};
static_assert(std::size(kSubscriberCounterHelp) == KVC_INDEX_SUBSCRIBER_COUNTER_COUNT);

struct Reply {
    int status = 200;
    std::string body;
};

Reply error_reply(int status, const std::string& message) { return {status, json{{"error", message}}.dump()}; }

// An HTTP status for a library status: what the client got wrong is 400, the index being full 503.
int http_status(kvc_status s) {
    switch (s) {
        case KVC_ERR_INVALID_ARGUMENT:
        case KVC_ERR_OUT_OF_RANGE: return 400;
        case KVC_ERR_CAPACITY:
        case KVC_ERR_NO_MEMORY: return 503;
        default: return 500;
    }
}

struct ApiError {
    int status;
    std::string message;
};
[[noreturn]] void bad_request(const std::string& message) { throw ApiError{400, message}; }
void check(kvc_status s, const char* what) {
    if (s != KVC_OK) throw ApiError{http_status(s), std::string(what) + ": " + kvc_last_error_message()};
}

// A block hash as JSON may carry it: an unsigned 64-bit integer, a negative one (its two's-complement
// bits, as the events' int64 hashes), or a decimal string (for clients whose numbers are doubles).
uint64_t parse_hash(const json& v, size_t i) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) return static_cast<uint64_t>(v.get<int64_t>());
    if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        uint64_t out = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return out;
    }
    bad_request("block_hashes[" + std::to_string(i) + "] must be an unsigned 64-bit integer or its decimal string");
}

int32_t parse_token(const json& v, size_t i) {
    if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX))
        return static_cast<int32_t>(v.get<uint64_t>());
    if (v.is_number_integer() && !v.is_number_unsigned()) {
        const int64_t t = v.get<int64_t>();
        if (t >= 0 && t <= INT32_MAX) return static_cast<int32_t>(t);
    }
    bad_request("token_ids[" + std::to_string(i) + "] must be an integer in 0..2147483647");
}

const std::string* optional_string(const json& body, const char* name) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    if (!it->is_string()) bad_request(std::string(name) + " must be a string");
    return &it->get_ref<const std::string&>();
}

class Service {
public:
    Service(kvc_index* index, kvc_index_subscriber* subscriber, const ServeIndexOptions& o)
        : index_(index), subscriber_(subscriber), options_(o) {}

    Reply score(const std::string& text) {
        try {
            return {200, score_json(text).dump()};
        } catch (const ApiError& e) {
            return error_reply(e.status, e.message);
        }
    }

    std::string metrics() const {
        std::string out;
        const auto family = [&](const std::string& name, const char* type, const char* help) {
            out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        };
        uint64_t values[KVC_INDEX_COUNTER_COUNT] = {};
        if (kvc_index_counters(index_, values, KVC_INDEX_COUNTER_COUNT, nullptr) == KVC_OK) {
            for (size_t c = 0; c < KVC_INDEX_COUNTER_COUNT; ++c) {
                const bool gauge = c < kIndexGauges;
                const std::string name = std::string("kvcore_index_") +
                                         kvc_index_counter_name(static_cast<kvc_index_counter>(c)) +
                                         (gauge ? "" : "_total");
                family(name, gauge ? "gauge" : "counter", kIndexCounterHelp[c]);
                out += name + " " + std::to_string(values[c]) + "\n";
            }
        }
        uint64_t sub[KVC_INDEX_SUBSCRIBER_COUNTER_COUNT] = {};
        if (kvc_index_subscriber_counters(subscriber_, sub, KVC_INDEX_SUBSCRIBER_COUNTER_COUNT, nullptr) == KVC_OK) {
            for (size_t c = 0; c < KVC_INDEX_SUBSCRIBER_COUNTER_COUNT; ++c) {
                const std::string name =
                    std::string("kvcore_index_subscriber_") +
                    kvc_index_subscriber_counter_name(static_cast<kvc_index_subscriber_counter>(c)) + "_total";
                family(name, "counter", kSubscriberCounterHelp[c]);
                out += name + " " + std::to_string(sub[c]) + "\n";
            }
        }
        family("kvcore_http_requests_total", "counter", "HTTP requests answered, by status code");
        std::lock_guard lock(http_mutex_);
        for (const auto& [code, n] : http_requests_) {
            out += "kvcore_http_requests_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
        }
        return out;
    }

    void count_request(int status) {
        std::lock_guard lock(http_mutex_);
        ++http_requests_[status];
    }

private:
    json score_json(const std::string& text) {
        const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded()) bad_request("the body is not valid JSON");
        if (!body.is_object()) bad_request("the body must be a JSON object");
        const std::string* model = optional_string(body, "model");
        if (model == nullptr || model->empty()) bad_request("model (a non-empty string) is required");

        const auto tokens_it = body.find("token_ids"), hashes_it = body.find("block_hashes");
        const bool has_tokens = tokens_it != body.end(), has_hashes = hashes_it != body.end();
        if (has_tokens == has_hashes) bad_request("give exactly one of token_ids and block_hashes");
        const json& prompt = has_tokens ? *tokens_it : *hashes_it;
        if (!prompt.is_array()) bad_request(std::string(has_tokens ? "token_ids" : "block_hashes") + " must be an array");

        std::vector<uint64_t> keys;
        if (has_tokens) {
            std::vector<int32_t> tokens;
            tokens.reserve(prompt.size());
            for (size_t i = 0; i < prompt.size(); ++i) tokens.push_back(parse_token(prompt[i], i));
            keys = request_keys(tokens, optional_string(body, "lora_name"), optional_string(body, "cache_salt"));
        } else {
            // lora_name and cache_salt are already in an engine's block hashes: checked, not used.
            optional_string(body, "lora_name");
            optional_string(body, "cache_salt");
            keys.reserve(prompt.size());
            for (size_t i = 0; i < prompt.size(); ++i) keys.push_back(parse_hash(prompt[i], i));
        }

        std::vector<std::string> pods;
        const auto pods_it = body.find("pods");
        if (pods_it != body.end() && !pods_it->is_null()) {
            if (!pods_it->is_array()) bad_request("pods must be an array of strings");
            if (pods_it->size() > options_.max_pods) bad_request("at most " + std::to_string(options_.max_pods) + " pods");
            for (size_t i = 0; i < pods_it->size(); ++i) {
                if (!(*pods_it)[i].is_string()) bad_request("pods[" + std::to_string(i) + "] must be a string");
                pods.push_back((*pods_it)[i].get<std::string>());
            }
        }
        admit_model(*model);  // only once the request is known to be valid
        if (pods_it == body.end() || pods_it->is_null()) {
            if (!keys.empty()) pods = holders_of_first_block(*model, keys.front());
        }

        std::vector<const char*> names;
        for (const std::string& p : pods) names.push_back(p.c_str());
        std::vector<double> scores(pods.size());
        std::vector<uint32_t> blocks(pods.size());
        check(kvc_index_score_keys(index_, model->c_str(), keys.data(), keys.size(), KVC_INDEX_KEY_REQUEST,
                                   names.data(), names.size(), scores.data(), blocks.data()),
              "score");
        json out_scores = json::object(), out_blocks = json::object();
        for (size_t i = 0; i < pods.size(); ++i) {
            out_scores[pods[i]] = scores[i];
            out_blocks[pods[i]] = blocks[i];
        }
        return json{{"model", *model}, {"prompt_blocks", keys.size()}, {"scores", out_scores}, {"blocks", out_blocks}};
    }

    std::vector<uint64_t> request_keys(const std::vector<int32_t>& tokens, const std::string* lora,
                                       const std::string* salt) {
        kvc_sequence_options* seq = nullptr;
        check(kvc_sequence_options_create(&seq), "sequence options");
        std::unique_ptr<kvc_sequence_options, void (*)(kvc_sequence_options*)> owned(seq, kvc_sequence_options_destroy);
        if (lora != nullptr) check(kvc_sequence_options_set_lora_name(seq, lora->c_str()), "lora_name");
        if (salt != nullptr) check(kvc_sequence_options_set_cache_salt(seq, salt->c_str()), "cache_salt");
        size_t n = 0;
        check(kvc_index_request_keys(index_, tokens.data(), tokens.size(), seq, nullptr, 0, &n), "request keys");
        std::vector<uint64_t> keys(n);
        check(kvc_index_request_keys(index_, tokens.data(), tokens.size(), seq, keys.data(), keys.size(), &n),
              "request keys");
        return keys;
    }

    // Without a pod list, the candidates are the pods that hold the prompt's first block: no other pod
    // can score above 0.
    std::vector<std::string> holders_of_first_block(const std::string& model, uint64_t key) {
        kvc_index_lookup_result* found = nullptr;
        check(kvc_index_lookup(index_, model.c_str(), &key, 1, KVC_INDEX_KEY_REQUEST, nullptr, 0, &found), "lookup");
        std::unique_ptr<kvc_index_lookup_result, void (*)(kvc_index_lookup_result*)> owned(
            found, kvc_index_lookup_result_destroy);
        std::set<std::string> pods;
        size_t holders = 0;
        if (kvc_index_lookup_result_keys_found(found) == 1) check(kvc_index_lookup_result_holders(found, 0, &holders), "lookup");
        for (size_t h = 0; h < holders; ++h) {
            const char* pod = nullptr;
            check(kvc_index_lookup_result_holder(found, 0, h, &pod, nullptr, nullptr, nullptr), "lookup");
            pods.insert(pod);
        }
        return {pods.begin(), pods.end()};
    }

    // Each model name a query names costs the index an id for good; a client must not be able to use
    // them all up (events of new models would then be refused), so queries may name a bounded set.
    void admit_model(const std::string& model) {
        std::lock_guard lock(models_mutex_);
        if (models_.count(model) != 0) return;
        if (models_.size() >= options_.max_models)
            bad_request("too many distinct models queried (--max-models " + std::to_string(options_.max_models) + ")");
        models_.insert(model);
    }

    kvc_index* index_;
    kvc_index_subscriber* subscriber_;
    const ServeIndexOptions& options_;
    std::mutex models_mutex_;
    std::set<std::string> models_;
    mutable std::mutex http_mutex_;
    std::map<int, uint64_t> http_requests_;
};

// cpp-httplib's own pool queues accepted connections without a bound. This one holds at most `limit`
// waiting; past it the acceptor serves the connection itself, so it accepts nothing more meanwhile and
// further clients wait in the kernel's backlog: back-pressure instead of unbounded memory.
class BoundedPool : public httplib::TaskQueue {
public:
    BoundedPool(size_t threads, size_t limit) : limit_(limit) {
        for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
    }
    ~BoundedPool() override { shutdown(); }
    void enqueue(std::function<void()> fn) override {
        {
            std::unique_lock lock(mutex_);
            if (queue_.size() < limit_) {
                queue_.push_back(std::move(fn));
                cv_.notify_one();
                return;
            }
        }
        fn();
    }
    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            if (stop_) return;
            stop_ = true;
        }
        cv_.notify_all();
        for (std::thread& t : threads_) t.join();
    }

private:
    void work() {
        for (;;) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping, and nothing left to serve
                fn = std::move(queue_.front());
                queue_.pop_front();
            }
            fn();
        }
    }
    const size_t limit_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

void send(httplib::Response& res, const Reply& reply) {
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
}

bool split_host_port(const std::string& text, std::string& host, int& port) {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string digits = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() && port >= 0 && port <= 65535;
}

}  // namespace

std::vector<std::string> serve_index_engine_keys() { return {"auto", "direct", "mapped"}; }

int run_serve_index(const ServeIndexOptions& o) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each startup line reaches a pipe as it is printed
    if (o.zmq_bind.empty() && o.engines.empty()) {
        std::fprintf(stderr, "kvcore %s: give --zmq-bind or at least one --engine\n", kCommand);
        return kExitUsage;
    }
    std::string http_host;
    int http_port = 0;
    if (!split_host_port(o.http, http_host, http_port)) {
        std::fprintf(stderr, "kvcore %s: --http %s is not HOST:PORT (port 0..65535)\n", kCommand, o.http.c_str());
        return kExitUsage;
    }
    const kvc_hash_algo algo = o.algo == "sha256_cbor" ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3;
    const bool direct = o.engine_keys == "direct" || (o.engine_keys == "auto" && algo == KVC_HASH_SHA256_CBOR);
    if (direct && algo != KVC_HASH_SHA256_CBOR) {
        std::fprintf(stderr, "kvcore %s: --engine-keys direct needs --hash sha256_cbor (what vLLM hashes with)\n",
                     kCommand);
        return kExitUsage;
    }

    // SIGINT/SIGTERM: a handler writes the signal into a pipe the main thread waits on. Not sigwait on
    // blocked signals: threads started before main (OpenBLAS's, linked for the demo) do not block them,
    // and a signal one of them took would kill the process.
    if (pipe2(stop_pipe, O_CLOEXEC) != 0) {
        std::fprintf(stderr, "kvcore %s: pipe: %s\n", kCommand, std::strerror(errno));
        return kExitFailure;
    }
    struct sigaction on_stop {};
    on_stop.sa_handler = stop_handler;
    on_stop.sa_flags = SA_RESTART;
    sigemptyset(&on_stop.sa_mask);
    sigaction(SIGINT, &on_stop, nullptr);
    sigaction(SIGTERM, &on_stop, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-answer is an error on its socket, not a kill

    Owned<kvc_index_options, kvc_index_options_destroy> index_options;
    if (!ok(kvc_index_options_create(&index_options.p), kCommand, "index options")) return kExitFailure;
    if (!ok(kvc_index_options_set_hash(index_options.p, algo, o.seed.c_str()), kCommand, "--hash/--seed") ||
        !ok(kvc_index_options_set_block_size(index_options.p, o.block_size), kCommand, "--block-size") ||
        !ok(kvc_index_options_set_engine_keys_direct(index_options.p, direct ? 1 : 0), kCommand, "--engine-keys") ||
        !ok(kvc_index_options_set_byte_budget(index_options.p, o.byte_budget), kCommand, "--byte-budget") ||
        !ok(kvc_index_options_set_ingest_threads(index_options.p, o.ingest_threads, 1024), kCommand, "--ingest-threads") ||
        (!o.redis.empty() && !ok(kvc_index_options_set_redis(index_options.p, o.redis.c_str()), kCommand, "--redis")) ||
        (o.score_cache != 0 &&
         !ok(kvc_index_options_set_score_cache(index_options.p, o.score_cache, 30000, 5), kCommand, "--score-cache")))
        return kExitUsage;
    Owned<kvc_index, kvc_index_destroy> index;
    if (!ok(kvc_index_create(index_options.p, &index.p), kCommand, "index")) return kExitFailure;

    Owned<kvc_index_subscriber_options, kvc_index_subscriber_options_destroy> sub_options;
    if (!ok(kvc_index_subscriber_options_create(&sub_options.p), kCommand, "subscriber options")) return kExitFailure;
    if (!o.zmq_bind.empty() && !ok(kvc_index_subscriber_options_set_bind(sub_options.p, o.zmq_bind.c_str()), kCommand, "--zmq-bind"))
        return kExitUsage;
    std::vector<std::pair<std::string, std::string>> engines;
    for (const std::string& e : o.engines) {
        const size_t comma = e.find(',');
        std::string endpoint = e.substr(0, comma), replay;
        if (comma != std::string::npos) {
            const std::string rest = e.substr(comma + 1);
            if (rest.rfind("replay=", 0) != 0 || rest.size() == 7) {
                std::fprintf(stderr, "kvcore %s: --engine %s: expected ENDPOINT[,replay=ENDPOINT]\n", kCommand, e.c_str());
                return kExitUsage;
            }
            replay = rest.substr(7);
        }
        if (!ok(kvc_index_subscriber_options_add_engine(sub_options.p, endpoint.c_str(), replay.c_str()), kCommand, "--engine"))
            return kExitUsage;
        engines.emplace_back(endpoint, replay);
    }
    for (const std::string& r : o.pod_replays) {
        const size_t eq = r.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == r.size()) {
            std::fprintf(stderr, "kvcore %s: --pod-replay %s: expected POD=ENDPOINT\n", kCommand, r.c_str());
            return kExitUsage;
        }
        if (!ok(kvc_index_subscriber_options_set_pod_replay(sub_options.p, r.substr(0, eq).c_str(), r.substr(eq + 1).c_str()),
                kCommand, "--pod-replay"))
            return kExitUsage;
    }
    Owned<kvc_index_subscriber, kvc_index_subscriber_destroy> subscriber;
    if (!ok(kvc_index_subscriber_create(index.p, sub_options.p, &subscriber.p), kCommand, "subscriber"))
        return kExitFailure;
    if (!ok(kvc_index_subscriber_start(subscriber.p), kCommand, "starting the ZeroMQ subscriber")) return kExitUsage;

    Service service(index.p, subscriber.p, o);
    httplib::Server http;
    http.new_task_queue = [&o] { return new BoundedPool(o.http_threads, 4 * size_t{o.http_threads}); };
    http.set_payload_max_length(o.max_body_bytes);
    http.set_read_timeout(5, 0);
    http.set_write_timeout(5, 0);
    http.set_keep_alive_max_count(100);
    http.Post("/score", [&](const httplib::Request& req, httplib::Response& res) { send(res, service.score(req.body)); });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(service.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"({"status":"ok"})", "application/json");
    });
    // Any other method or path: 405 on a known path (with Allow), 404 elsewhere.
    const auto other = [](const httplib::Request& req, httplib::Response& res) {
        const std::map<std::string, std::string> allow = {{"/score", "POST"}, {"/metrics", "GET, HEAD"}, {"/healthz", "GET, HEAD"}};
        if (const auto it = allow.find(req.path); it != allow.end()) {
            res.set_header("Allow", it->second);
            send(res, error_reply(405, req.method + " is not allowed on " + req.path + " (allowed: " + it->second + ")"));
        } else {
            send(res, error_reply(404, "no such path: " + req.path + " (POST /score, GET /metrics, GET /healthz)"));
        }
    };
    http.Get(".*", other).Post(".*", other).Put(".*", other).Delete(".*", other).Patch(".*", other).Options(".*", other);
    // What cpp-httplib refuses on its own (a body past the limit: 413; a bad request line: 400) gets a JSON body too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        // cpp-httplib caps form-encoded bodies (curl -d's default type) at 8192 bytes whatever the limit.
        const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
        const std::string what = res.status != 413 ? "the request was refused (HTTP " + std::to_string(res.status) + ")"
                                 : form ? "a form-encoded body is limited to 8192 bytes: send Content-Type: application/json"
                                        : "the body is larger than --max-body-bytes";
        send(res, error_reply(res.status, what));
        return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send(res, error_reply(500, "internal error"));
    });
    // Counted before the response is written (the logger runs after it): a client that reads /metrics
    // right after an answer sees that answer counted.
    http.set_post_routing_handler([&](const httplib::Request&, httplib::Response& res) { service.count_request(res.status); });

    const int port = http_port == 0 ? http.bind_to_any_port(http_host) : (http.bind_to_port(http_host, http_port) ? http_port : -1);
    if (port < 0) {
        std::fprintf(stderr, "kvcore %s: --http %s: cannot listen there (in use, or not an address of this host)\n",
                     kCommand, o.http.c_str());
        return kExitUsage;
    }

    if (!o.zmq_bind.empty()) {
        size_t n = 0;
        std::string bound(256, '\0');
        if (kvc_index_subscriber_bound_endpoint(subscriber.p, bound.data(), bound.size(), &n) == KVC_OK) bound.resize(n);
        std::printf("kvcore serve-index: zmq bind %s (engines connect their PUB here)\n", bound.c_str());
        for (const std::string& r : o.pod_replays) std::printf("kvcore serve-index: replay for pod %s\n", r.c_str());
    }
    for (const auto& [endpoint, replay] : engines) {
        std::printf("kvcore serve-index: zmq engine %s replay %s\n", endpoint.c_str(), replay.empty() ? "none" : replay.c_str());
    }
    std::printf("kvcore serve-index: topics kv@<pod>@<model> (3 frames: topic, 8-byte big-endian seq, msgpack EventBatch)\n");
    std::printf("kvcore serve-index: index %s seed \"%s\" block size %u, engine keys %s, ingest threads %u, byte budget %llu\n",
                o.algo.c_str(), o.seed.c_str(), o.block_size, direct ? "direct" : "mapped", o.ingest_threads,
                static_cast<unsigned long long>(o.byte_budget));
    if (!o.redis.empty()) std::printf("kvcore serve-index: entries shared in Redis at %s\n", o.redis.c_str());
    if (o.score_cache != 0) std::printf("kvcore serve-index: score cache of %u prompts\n", o.score_cache);
    std::printf("kvcore serve-index: http http://%s:%d (POST /score, GET /metrics, GET /healthz)\n",
                http_host.find(':') != std::string::npos ? ("[" + http_host + "]").c_str() : http_host.c_str(), port);
    std::printf("kvcore serve-index: ready\n");

    std::atomic<bool> http_failed{false};
    std::thread server([&] {
        if (!http.listen_after_bind()) http_failed = true;
        stop_handler(SIGTERM);  // wakes the wait below whether the server stopped by itself or was asked to
    });
    unsigned char signal_number = 0;
    while (read(stop_pipe[0], &signal_number, 1) != 1 && errno == EINTR) {
    }
    http.stop();
    server.join();
    kvc_index_subscriber_stop(subscriber.p);
    std::printf("kvcore serve-index: stopped (%s)\n", http_failed ? "the HTTP server failed" : strsignal(signal_number));
    return http_failed ? kExitFailure : kExitOk;
}

}  // namespace kvcore::cli

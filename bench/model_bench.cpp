// SPDX-License-Identifier: Apache-2.0
// The reference decoder end to end (issue 15), against SmallMind's claims (../shared/seeds/001):
//   (a) one request, a 19-token prompt and 50 new tokens (temperature 0.8, top-k 40): with the pool's KV cache
//       against recomputing the whole context for every token (SmallMind: 13.2x, 69.73 tokens/s cached);
//   (b) 8 requests of that shape with 100 new tokens: one forward pass per step for all running sequences
//       against one request at a time (SmallMind: 5x).
// Each figure is the median of --runs timed runs after one warm-up run, both sides alternating in the same
// process.
// Tokens/s counts generated tokens; the prompt's prefill is inside the timed run on both sides.
// Usage: kvcore_model_bench [--runs N] [--large-runs N] [--kv-threads N] [--skip-small] [--skip-large]
// (--kv-threads: the KV kernels' worker threads, kvc_kv_set_threads; default one per core. OpenBLAS's own
// threads are set by OPENBLAS_NUM_THREADS.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/rng.h"
#include "kvcore/ops.h"

namespace {

using namespace kvcore::model;

constexpr uint32_t kBlock = 16;

struct Pool {
    kvc_pool* pool = nullptr;
    explicit Pool(const Config& c, uint32_t blocks) {
        kvc_pool_options* o = nullptr;
        bool ok = kvc_pool_options_create(&o) == KVC_OK && kvc_pool_options_set_num_blocks(o, blocks) == KVC_OK &&
                  kvc_pool_options_set_block_size(o, kBlock) == KVC_OK &&
                  kvc_pool_options_set_model_shape(o, c.layers, c.heads, c.head_dim(), KVC_DTYPE_F32) == KVC_OK &&
                  kvc_pool_options_set_memory(o, KVC_MEMORY_HOST) == KVC_OK &&
                  // Every run must compute its prompt: no prefix reuse between the repeated runs.
                  kvc_pool_options_set_prefix_caching(o, 0) == KVC_OK && kvc_pool_create(o, &pool) == KVC_OK;
        kvc_pool_options_destroy(o);
        if (!ok) {
            std::fprintf(stderr, "pool: %s\n", kvc_last_error_message());
            std::exit(1);
        }
    }
    ~Pool() { kvc_pool_destroy(pool); }
};

std::vector<Request> requests(const Config& c, size_t n, uint32_t prompt_tokens, uint32_t new_tokens) {
    std::vector<Request> out;
    Rng rng(2024);
    for (size_t i = 0; i < n; ++i) {
        Request r{.max_new_tokens = new_tokens, .sampling = {.temperature = 0.8f, .top_k = 40, .seed = 7 + i}};
        for (uint32_t t = 0; t < prompt_tokens; ++t) r.prompt.push_back(int32_t(rng.next() % c.vocab));
        out.push_back(std::move(r));
    }
    return out;
}

// Seconds of one generation of all requests.
double seconds(Model& model, kvc_pool* pool, const std::vector<Request>& reqs, const GenerateOptions& opt) {
    const auto begin = std::chrono::steady_clock::now();
    (void)generate(model, pool, reqs, opt);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Generated tokens per second of both sides: one warm-up run each, then `runs` runs alternating side by side
// (on a shared machine a burst of other work then hits both sides alike); medians.
void compare(const char* label, const char* base_label, Model& model, kvc_pool* pool, const std::vector<Request>& reqs,
             const GenerateOptions& fast, const GenerateOptions& base, int runs) {
    double tokens = 0;
    for (const Request& r : reqs) tokens += r.max_new_tokens;
    std::vector<double> a, b;
    for (int i = -1; i < runs; ++i) {
        const double sa = seconds(model, pool, reqs, fast), sb = seconds(model, pool, reqs, base);
        if (i >= 0) {
            a.push_back(tokens / sa);
            b.push_back(tokens / sb);
        }
    }
    const double ma = median(a), mb = median(b);
    std::printf("| %s | %.1f | %s | %.1f | **%.1fx** |\n", label, ma, base_label, mb, ma / mb);
    std::fflush(stdout);
}

// batch_new_tokens: the new tokens of each of (b)'s 8 requests.
void run_preset(const char* name, const Config& c, int runs, uint32_t batch_new_tokens) {
    Pool pool(c, 256);
    Model model(c, pool_memory(pool.pool, kBlock));
    std::printf("\n%s: %u layers, d_model %u, %u heads of %u, MLP %u, vocabulary %u (fp32)\n\n", name, c.layers,
                c.d_model, c.heads, c.head_dim(), c.mlp_hidden, c.vocab);
    std::printf("| run | tokens/s | baseline | tokens/s | ratio |\n|---|---|---|---|---|\n");
    compare("(a) 19 + 50 tokens, KV cache", "recompute every context", model, pool.pool, requests(c, 1, 19, 50),
            {.mode = Mode::kCached}, {.mode = Mode::kRecompute}, runs);
    const std::string label = "(b) 8 x (19 + " + std::to_string(batch_new_tokens) + "), batched (8 per step)";
    compare(label.c_str(), "one request at a time", model, pool.pool, requests(c, 8, 19, batch_new_tokens),
            {.max_batch = 8}, {.max_batch = 1}, runs);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5, large_runs = 3;
    bool small = true, large = true;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (!std::strcmp(argv[i], "--large-runs") && i + 1 < argc) {
            large_runs = std::max(1, std::atoi(argv[++i]));
        } else if (!std::strcmp(argv[i], "--kv-threads") && i + 1 < argc) {
            if (kvc_kv_set_threads(uint32_t(std::atoi(argv[++i]))) != KVC_OK) {
                std::fprintf(stderr, "--kv-threads: %s\n", kvc_last_error_message());
                return 2;
            }
        } else if (!std::strcmp(argv[i], "--skip-small")) {
            small = false;
        } else if (!std::strcmp(argv[i], "--skip-large")) {
            large = false;
        } else {
            std::fprintf(stderr, "usage: %s [--runs N] [--large-runs N] [--kv-threads N] [--skip-small] [--skip-large]\n", argv[0]);
            return 2;
        }
    }
    try {
        std::printf("KV kernels: %s, %u threads; medians of %d runs (larger model: %d) after one warm-up\n",
                    kvc_kv_isa(), kvc_kv_threads(), runs, large_runs);
        if (small) run_preset("SmallMind's shape", Config::small_mind(), runs, 100);
        // 25 new tokens for (b): one request at a time reads the 340 MB of weights once per token.
        if (large) run_preset("GPT-2 small's body", Config::gpt2_small(), large_runs, 25);
    } catch (const kvcore::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
// A real redis-server for tests and benchmarks: started on 127.0.0.1 on a free port (and a unix socket) in
// its own temporary directory, without persistence, waited for until it answers PING, and killed at the
// end. stop() and start() again keep the port, which is how a test restarts the server mid-run.
#pragma once

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace kvcore::testing {

class RedisServer {
public:
    // The redis-server on PATH, or "" when there is none.
    static std::string binary() {
        const char* path = std::getenv("PATH");
        std::string p = path != nullptr ? path : "/usr/bin:/usr/local/bin";
        for (size_t start = 0; start <= p.size();) {
            const size_t end = std::min(p.find(':', start), p.size());
            const std::filesystem::path candidate = std::filesystem::path(p.substr(start, end - start)) / "redis-server";
            if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
            start = end + 1;
        }
        return {};
    }

    RedisServer() : binary_(binary()) {
        char tmpl[] = "/tmp/kvcore-redis-XXXXXX";
        if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
        port_ = free_port();
    }
    ~RedisServer() {
        stop();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    [[nodiscard]] bool available() const { return !binary_.empty() && !dir_.empty() && port_ != 0; }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] std::string socket_path() const { return dir_ + "/redis.sock"; }

    // Starts the server and waits (at most 5 s) until it answers PING; false when it does not.
    bool start() {
        if (!available() || pid_ > 0) return false;
        const std::string port = std::to_string(port_), sock = socket_path(), log = dir_ + "/redis.log";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl(binary_.c_str(), binary_.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", dir_.c_str(), "--unixsocket", sock.c_str(), "--logfile",
                    log.c_str(), "--daemonize", "no", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (pid_ < 0) return false;
        for (int i = 0; i < 500; ++i) {
            if (ping()) return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited (the port was taken meanwhile)
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }

    // Kills the server (SIGKILL: no goodbye to the clients) and waits for it.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    // One command on a fresh connection; the reply as an integer (-1 when it is not one).
    long long integer(const char* command) const {
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{1, 0});
        long long v = -1;
        if (c != nullptr && c->err == 0) {
            auto* r = static_cast<redisReply*>(redisCommand(c, command));
            if (r != nullptr && r->type == REDIS_REPLY_INTEGER) v = r->integer;
            if (r != nullptr && r->type == REDIS_REPLY_ARRAY) v = static_cast<long long>(r->elements);
            if (r != nullptr) freeReplyObject(r);
        }
        if (c != nullptr) redisFree(c);
        return v;
    }

    // A field of INFO (e.g. info("stats", "evicted_keys")); "" when there is none.
    std::string info(const char* section, const std::string& field) const {
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{1, 0});
        std::string v;
        if (c != nullptr && c->err == 0) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "INFO %s", section));
            if (r != nullptr && r->type == REDIS_REPLY_STRING) {
                const std::string text(r->str, r->len);
                const size_t at = text.find("\r\n" + field + ":");
                if (at != std::string::npos) {
                    const size_t start = at + 3 + field.size();
                    v = text.substr(start, text.find("\r\n", start) - start);
                }
            }
            if (r != nullptr) freeReplyObject(r);
        }
        if (c != nullptr) redisFree(c);
        return v;
    }

private:
    static int free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return 0;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof(addr);
        int port = 0;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
            port = ntohs(addr.sin_port);
        ::close(fd);
        return port;
    }

    bool ping() const {
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{0, 200000});
        bool ok = false;
        if (c != nullptr && c->err == 0) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
            ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
            if (r != nullptr) freeReplyObject(r);
        }
        if (c != nullptr) redisFree(c);
        return ok;
    }

    std::string binary_, dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace kvcore::testing

# SPDX-License-Identifier: Apache-2.0
"""`kvcore serve-index` end to end, with everything on the engine side built apart from kvcore: KV event
batches written by Python's msgpack (both encodings vLLM uses), sent through real ZeroMQ sockets
(python3-zmq) on 127.0.0.1, and the scores read back over HTTP (urllib) and checked against what the test
computes itself.

  1. Bind mode, direct keys (sha256_cbor, seed 42, block size 16): engines connect their PUB to the
     router. The events carry the block hashes a real vLLM published for a real prompt
     (tests/data/vllm_kv_event_base.json); scoring by token_ids then only matches if kvcore hashes the
     prompt exactly as vLLM did, and scoring by block_hashes uses the hashes as given.
  2. Connect mode, mapped keys: the router connects to an engine's PUB and replay ROUTER. The engine's
     hashes are arbitrary (keys are recomputed from the events' tokens); a sequence gap is filled by the
     engine's replay; an engine restart clears what it held before.
  3. /metrics is valid Prometheus text; /healthz answers; bad requests get 4xx and a JSON error, and the
     server is still healthy after them.

usage: serve_index_e2e.py KVCORE DATA_DIR      (exit 77: python3-zmq or python3-msgpack missing)
"""
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

try:
    import msgpack
    import zmq
except ImportError as e:
    print("SKIP: serve_index_e2e needs python3-zmq and python3-msgpack (%s)" % e)
    sys.exit(77)

DEADLINE_S = 20.0
MODEL = "Qwen/Qwen3-0.6B"
TOPIC_ENC = "utf-8"


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def until(what, predicate, timeout=DEADLINE_S):
    """Polls predicate() until it returns a true value (returned) or the deadline passes (a failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            fail("timed out waiting for " + what)
        time.sleep(0.02)


# ---- the server ---------------------------------------------------------------------------------

class Server:
    def __init__(self, kvcore, args):
        self.proc = subprocess.Popen([kvcore, "serve-index", "--http", "127.0.0.1:0"] + args,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()
        self.zmq_bind = None
        self.http = None
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                fail("serve-index did not say it was ready; output:\n" + "".join(self.output))
            if line is None:
                fail("serve-index exited at start (%s); output:\n%s" % (self.proc.wait(), "".join(self.output)))
            m = re.match(r"kvcore serve-index: zmq bind (\S+)", line)
            if m:
                self.zmq_bind = m.group(1)
            m = re.match(r"kvcore serve-index: http http://(\S+)", line)
            if m:
                self.http = "http://" + m.group(1)
            if line.startswith("kvcore serve-index: ready"):
                break
        if self.http is None or self.http.endswith(":0"):
            fail("no HTTP address (with its real port) in the startup lines: " + "".join(self.output))

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def request(self, method, path, body=None, raw=None, headers=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.http + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def score(self, body):
        status, text = self.request("POST", "/score", body)
        if status != 200:
            fail("POST /score %s: %d %s" % (json.dumps(body)[:200], status, text))
        return json.loads(text)

    def metrics(self):
        status, text = self.request("GET", "/metrics")
        if status != 200:
            fail("GET /metrics: %d" % status)
        return parse_prometheus(text)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("serve-index did not stop within %d s of signal %d" % (DEADLINE_S, sig))
            if rc != 0:
                fail("serve-index exited %d on signal %d; output:\n%s" % (rc, sig, "".join(self.output)))
            until("the stop message", lambda: any("stopped" in l for l in self.output), 5)


def parse_prometheus(text):
    """Checks the text exposition format (every sample's family has # HELP and # TYPE first, counters
    end in _total) and returns {sample name with labels: value}."""
    helped, typed, samples = set(), {}, {}
    for line in text.splitlines():
        if not line:
            continue
        m = re.match(r"# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$", line)
        if m:
            helped.add(m.group(1))
            continue
        m = re.match(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$", line)
        if m:
            typed[m.group(1)] = m.group(2)
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? '
                     r'(-?[0-9.e+]+|NaN|[+-]Inf)$', line)
        if not m:
            fail("not a Prometheus sample line: %r" % line)
        name = m.group(1)
        if name not in helped or name not in typed:
            fail("sample %s comes without its # HELP and # TYPE" % name)
        if typed[name] == "counter" and not name.endswith("_total"):
            fail("counter %s does not end in _total" % name)
        samples[name + (m.group(2) or "")] = float(m.group(4))
    return samples


# ---- the engine side: vLLM's wire format, written here --------------------------------------------

def hash_on_wire(value, form):
    if form == "bytes":  # a sha256 digest: vLLM's maybe_convert_block_hash reads the last 8 bytes
        return bytes(range(24)) + value.to_bytes(8, "big")
    if form == "int64" and value >= 1 << 63:
        return value - (1 << 64)
    return value


def stored(hashes, parent, tokens, block_size, encoding, medium="GPU", hash_form="uint64"):
    fields = [[hash_on_wire(h, hash_form) for h in hashes],
              None if parent is None else hash_on_wire(parent, hash_form), tokens, block_size, None, medium, None]
    if encoding == "array":
        return ["BlockStored"] + fields
    names = ["block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium", "lora_name"]
    return dict([("type", "BlockStored")] + list(zip(names, fields)))


def removed(hashes, encoding):
    if encoding == "array":
        return ["BlockRemoved", hashes, "GPU"]
    return {"type": "BlockRemoved", "block_hashes": hashes, "medium": "GPU"}


def batch(events, encoding, rank=0):
    """vLLM's EventBatch: the positional array [ts, events, data_parallel_rank], or a map (forks)."""
    ts = time.time()
    if encoding == "array":
        return msgpack.packb([ts, events, rank])
    return msgpack.packb({"ts": ts, "events": events, "data_parallel_rank": rank})


def seq_frame(seq):
    return seq.to_bytes(8, "big", signed=seq < 0)


def wait_subscribed(xpub):
    """An XPUB learns when a subscriber's subscription reaches it: only then are messages not dropped."""
    def arrived():
        if xpub.poll(50):
            msg = xpub.recv()
            return msg[:1] == b"\x01"
        return False
    until("the router's subscription", arrived)


def send(sock, pod, seq, payload):
    sock.send_multipart([("kv@%s@%s" % (pod, MODEL)).encode(TOPIC_ENC), seq_frame(seq), payload])


def chain(hashes, tokens, first, last, block_size, encoding, **kw):
    """BlockStored of blocks [first, last) of a prompt, parent the block before."""
    parent = hashes[first - 1] if first > 0 else None
    return stored(hashes[first:last], parent, tokens[first * block_size:last * block_size], block_size, encoding, **kw)


def expect_scores(server, body, want_blocks, weights=None):
    """Polls /score until every pod's run of cached blocks is the expected one, then checks the scores."""
    last = {}

    def matches():
        last["r"] = server.score(body)
        return last["r"]["blocks"] == want_blocks
    deadline = time.monotonic() + DEADLINE_S
    while not matches():
        if time.monotonic() > deadline:
            fail("POST /score %s: blocks %s, want %s" % (json.dumps(body)[:120], last["r"]["blocks"], want_blocks))
        time.sleep(0.02)
    for pod, n in want_blocks.items():
        want = n * (weights or {}).get(pod, 1.0)
        got = last["r"]["scores"][pod]
        if abs(got - want) > 1e-5:
            fail("pod %s scored %r, want %r" % (pod, got, want))
    return last["r"]


# ---- the scenarios ------------------------------------------------------------------------------

def bind_mode_with_vllm_hashes(kvcore, data_dir):
    with open(os.path.join(data_dir, "vllm_tokens.txt")) as f:
        tokens = [int(t) for t in f.read().split()]
    with open(os.path.join(data_dir, "vllm_block_hashes.txt")) as f:
        hashes = [int(h) for h in f.read().split()]
    bs = 16
    if len(hashes) != len(tokens) // bs:
        fail("test data: %d hashes for %d tokens" % (len(hashes), len(tokens)))
    ctx = zmq.Context()
    # pod-g's engine keeps its batches for replay; a bound socket cannot tell who sent what, so the
    # router is told its replay endpoint by pod.
    replay_g = ReplayRouter(ctx, ("kv@pod-g@%s" % MODEL).encode())
    server = Server(kvcore, ["--zmq-bind", "tcp://127.0.0.1:0", "--hash", "sha256_cbor", "--seed", "42",
                             "--block-size", str(bs), "--max-models", "16", "--max-body-bytes", "65536",
                             "--pod-replay", "pod-g=" + replay_g.endpoint])
    if not server.zmq_bind or server.zmq_bind.endswith(":0"):
        fail("no bound ZeroMQ endpoint in the startup lines")
    if not any(("replay for pod pod-g=" + replay_g.endpoint) in l for l in server.output):
        fail("the startup lines do not name pod-g's replay endpoint")
    if not any("topics kv@<pod>@<model>" in l for l in server.output):
        fail("the startup lines do not state the topic pattern")
    engines = {}
    for pod in ("pod-a", "pod-b", "pod-c", "pod-e", "pod-g"):
        s = ctx.socket(zmq.XPUB)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(server.zmq_bind)  # bind mode: the engine connects, as vLLM does with a host in its endpoint
        wait_subscribed(s)
        engines[pod] = s
    # pod-a: all 25 blocks in one event (array batch, tagged-array events, uint64 hashes).
    send(engines["pod-a"], "pod-a", 0, batch([chain(hashes, tokens, 0, 25, bs, "array")], "array"))
    # pod-b: blocks 0..9 in two chained events (map batch, map events, hashes as 32-byte digests).
    send(engines["pod-b"], "pod-b", 0, batch([chain(hashes, tokens, 0, 5, bs, "map", hash_form="bytes"),
                                              chain(hashes, tokens, 5, 10, bs, "map", hash_form="bytes")], "map"))
    # pod-c: all 25 (int64 hashes), then block 5 evicted in a second batch: its run ends at 5.
    send(engines["pod-c"], "pod-c", 0, batch([chain(hashes, tokens, 0, 25, bs, "map", hash_form="int64")], "array"))
    send(engines["pod-c"], "pod-c", 1, batch([removed([hashes[5]], "array")], "map"))
    # pod-e: 4 blocks offloaded to CPU (no tokens, as vLLM's CPU offload publishes them): weight 0.8.
    send(engines["pod-e"], "pod-e", 0,
         batch([stored(hashes[:4], None, [], bs, "array", medium="CPU")], "array"))

    # pod-g: blocks 0..2, 3..5, 6..7 in seqs 0, 1, 2; seq 1 never arrives live, replay brings it.
    g = [batch([chain(hashes, tokens, a, b, bs, "map")], "array") for a, b in ((0, 3), (3, 6), (6, 8))]
    replay_g.kept = dict(enumerate(g))
    send(engines["pod-g"], "pod-g", 0, g[0])
    send(engines["pod-g"], "pod-g", 2, g[2])

    want = {"pod-a": 25, "pod-b": 10, "pod-c": 5, "pod-e": 4, "pod-g": 8, "pod-unknown": 0}
    weights = {"pod-e": 0.8}
    pods = list(want)
    r = expect_scores(server, {"model": MODEL, "token_ids": tokens, "pods": pods}, want, weights)
    if r["prompt_blocks"] != 25:
        fail("prompt_blocks %r, want 25" % r["prompt_blocks"])
    # The same through the engines' hashes, given as numbers and as decimal strings.
    expect_scores(server, {"model": MODEL, "block_hashes": hashes, "pods": pods}, want, weights)
    expect_scores(server, {"model": MODEL, "block_hashes": [str(h) for h in hashes], "pods": pods}, want, weights)
    # No pod list: the pods holding block 0.
    expect_scores(server, {"model": MODEL, "token_ids": tokens}, {p: n for p, n in want.items() if n}, weights)
    # A partial prompt scores its own blocks; a LoRA changes every key, so no pod holds them.
    expect_scores(server, {"model": MODEL, "token_ids": tokens[:3 * bs + 5], "pods": pods},
                  {p: min(n, 3) for p, n in want.items()}, weights)
    expect_scores(server, {"model": MODEL, "token_ids": tokens, "pods": pods, "lora_name": "alice",
                           "cache_salt": None}, {p: 0 for p in want})
    expect_scores(server, {"model": "another/model", "token_ids": tokens, "pods": pods}, {p: 0 for p in want})

    m = server.metrics()
    if replay_g.requests != [1]:
        fail("pod-g's replay requests %r, want one from seq 1" % replay_g.requests)
    for name, value in [("kvcore_index_subscriber_batches_applied_total", 8),
                        ("kvcore_index_subscriber_messages_total", 7),
                        ("kvcore_index_subscriber_replayed_batches_total", 2),
                        ("kvcore_index_subscriber_decode_failures_total", 0),
                        ("kvcore_index_subscriber_lost_batches_total", 0),
                        ("kvcore_index_blocks_stored_total", 25 + 10 + 25 + 4 + 8),
                        ("kvcore_index_blocks_removed_total", 1)]:
        if m.get(name) != value:
            fail("%s = %r, want %r" % (name, m.get(name), value))
    if m.get('kvcore_http_requests_total{code="200"}', 0) < 7:
        fail("HTTP 200s not counted: %r" % {k: v for k, v in m.items() if "http" in k})

    # A malformed payload is counted and changes nothing; the stream goes on.
    send(engines["pod-a"], "pod-a", 1, b"\x93\x01")
    send(engines["pod-a"], "pod-a", 2, batch([removed([hashes[20]], "array")], "array"))
    want["pod-a"] = 20
    expect_scores(server, {"model": MODEL, "token_ids": tokens, "pods": pods}, want, weights)
    if server.metrics().get("kvcore_index_subscriber_decode_failures_total") != 1:
        fail("a malformed payload was not counted as a decode failure")

    bad_requests(server)
    concurrent_scores(server, {"model": MODEL, "token_ids": tokens, "pods": pods}, want)
    replay_g.close()
    for s in engines.values():
        s.close()
    ctx.term()
    server.stop()


def bad_requests(server):
    long_model = "m" * 100
    cases = [
        ("POST", "/score", b"{not json", 400),
        ("POST", "/score", b"[1, 2]", 400),
        ("POST", "/score", b'"just a string"', 400),
        ("POST", "/score", b"", 400),
        ("POST", "/score", json.dumps({"token_ids": [1, 2]}).encode(), 400),                        # no model
        ("POST", "/score", json.dumps({"model": 7, "token_ids": [1]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": "", "token_ids": [1]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL}).encode(), 400),                             # no prompt
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "block_hashes": [1]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1, -2]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1, 2.5]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1, "2"]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1 << 31]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": "1 2 3"}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [[1]]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "block_hashes": [1 << 64]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "block_hashes": ["12x"]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "block_hashes": [None]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "pods": "pod-a"}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "pods": [1]}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "lora_name": 3}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "cache_salt": []}).encode(), 400),
        ("POST", "/score", json.dumps({"model": MODEL, "token_ids": [1], "pods": ["p"] * 5000}).encode(), 400),
        ("POST", "/score", b'{"model": "' + long_model.encode() + b'", "token_ids": [' + b"[" * 10000 + b"]" * 10000 + b"]}", 400),
        ("POST", "/score", b"\xff\xfe\x00garbage", 400),
        ("GET", "/score", None, 405),
        ("PUT", "/score", b"{}", 405),
        ("DELETE", "/metrics", None, 405),
        ("POST", "/healthz", b"", 405),
        ("GET", "/nowhere", None, 404),
        ("POST", "/nowhere", b"{}", 404),
    ]
    for method, path, body, want in cases:
        status, text = server.request(method, path, raw=body, headers={"Content-Type": "application/json"})
        if status != want:
            fail("%s %s %r: status %d, want %d (%s)" % (method, path, (body or b"")[:60], status, want, text[:200]))
        try:
            err = json.loads(text)
        except ValueError:
            fail("%s %s: the error is not JSON: %r" % (method, path, text[:200]))
        if not isinstance(err, dict) or not isinstance(err.get("error"), str) or not err["error"]:
            fail("%s %s: no {\"error\": ...} in %r" % (method, path, text[:200]))
    # A body past --max-body-bytes (64 KiB here) is refused whole.
    status, text = server.request("POST", "/score", raw=b"x" * (200 << 10), headers={"Content-Type": "application/json"})
    if status != 413 or "error" not in json.loads(text):
        fail("an oversized body: %d %r, want 413 and a JSON error" % (status, text))
    status, text = server.request("POST", "/score", raw=json.dumps({"model": MODEL, "token_ids": [1] * 5000}).encode(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    if status != 413 or "application/json" not in text:
        fail("a large form-encoded body: %d %r, want 413 saying to send application/json" % (status, text))
    # Distinct model names are bounded (each costs the index an id for good).
    status, text = 200, ""
    for i in range(100):
        status, text = server.request("POST", "/score", {"model": "spam-%d" % i, "token_ids": [1]})
        if status != 200:
            break
    if status != 400 or "too many distinct models" not in text:
        fail("model names past --max-models: %d %s" % (status, text))
    status, text = server.request("GET", "/healthz")
    if status != 200 or json.loads(text).get("status") != "ok":
        fail("/healthz after bad requests: %d %s" % (status, text))
    m = server.metrics()
    for code in ("400", "404", "405", "413"):
        if m.get('kvcore_http_requests_total{code="%s"}' % code, 0) < 1:
            fail("HTTP %s not counted in /metrics" % code)
    server.score({"model": MODEL, "token_ids": [1] * 32, "pods": ["pod-a"]})


def concurrent_scores(server, body, want_blocks, threads=8, each=25):
    """Clients at once (more than the server's HTTP threads): every answer complete and the same."""
    errors = []

    def client():
        for _ in range(each):
            status, text = server.request("POST", "/score", body)
            if status != 200 or json.loads(text)["blocks"] != want_blocks:
                errors.append((status, text[:200]))
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE_S)
    if any(w.is_alive() for w in workers) or errors:
        fail("concurrent /score: %d errors, first %r" % (len(errors), errors[:1]))


class ReplayRouter:
    """An engine's replay ROUTER as vLLM runs it: a DEALER sends ["", start_seq]; the answer is
    ["", topic, seq, payload] per kept batch from start_seq on, then ["", "", -1, ""]."""

    def __init__(self, ctx, topic):
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = "tcp://127.0.0.1:%d" % port
        self.topic = topic
        self.kept = {}
        self.requests = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            if not self.sock.poll(20):
                continue
            frames = self.sock.recv_multipart()
            if len(frames) != 3 or frames[1] != b"" or len(frames[2]) != 8:
                continue
            start = int.from_bytes(frames[2], "big")
            self.requests.append(start)
            for seq in sorted(self.kept):
                if seq >= start:
                    self.sock.send_multipart([frames[0], b"", self.topic, seq_frame(seq), self.kept[seq]])
            self.sock.send_multipart([frames[0], b"", b"", seq_frame(-1), b""])

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


def connect_mode_with_gap_and_restart(kvcore):
    rng = random.Random(13)
    bs = 16
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub_endpoint = "tcp://127.0.0.1:%d" % pub.bind_to_random_port("tcp://127.0.0.1")
    topic = ("kv@pod-r@%s" % MODEL).encode()
    router = ReplayRouter(ctx, topic)
    # Mapped keys: the engine's hashes are its own (here random); the index keys blocks by their tokens.
    server = Server(kvcore, ["--engine", pub_endpoint + ",replay=" + router.endpoint, "--hash", "xxh3",
                             "--seed", "7", "--block-size", str(bs), "--ingest-threads", "2"])
    if not any(("zmq engine %s replay %s" % (pub_endpoint, router.endpoint)) in l for l in server.output):
        fail("the startup lines do not name the engine and its replay endpoint: " + "".join(server.output))
    wait_subscribed(pub)
    prompt = [rng.randrange(1, 150000) for _ in range(10 * bs)]
    hashes = [rng.randrange(1 << 64) for _ in range(10)]
    payloads = [batch([chain(hashes, prompt, 0, 4, bs, "array")], "array"),
                batch([chain(hashes, prompt, 4, 6, bs, "map")], "map"),
                batch([chain(hashes, prompt, 6, 8, bs, "array")], "map"),
                batch([chain(hashes, prompt, 8, 10, bs, "map")], "array")]
    for seq, p in enumerate(payloads):
        router.kept[seq] = p
    # Live: seqs 0 and 3 only. Seq 3's parent is unknown until replay brings 1 and 2.
    send(pub, "pod-r", 0, payloads[0])
    send(pub, "pod-r", 3, payloads[3])
    body = {"model": MODEL, "token_ids": prompt, "pods": ["pod-r"]}
    expect_scores(server, body, {"pod-r": 10})
    if router.requests != [1]:
        fail("replay requests %r, want one from seq 1" % router.requests)
    m = server.metrics()
    for name, value in [("kvcore_index_subscriber_gaps_total", 1),
                        ("kvcore_index_subscriber_replays_requested_total", 1),
                        ("kvcore_index_subscriber_replayed_batches_total", 3),
                        ("kvcore_index_subscriber_lost_batches_total", 0)]:
        if m.get(name) != value:
            fail("%s = %r, want %r" % (name, m.get(name), value))

    # The engine restarts: its seq starts again at 0 and its old cache is gone. Only the new batch counts.
    other = [rng.randrange(1, 150000) for _ in range(3 * bs)]
    other_hashes = [rng.randrange(1 << 64) for _ in range(3)]
    send(pub, "pod-r", 0, batch([chain(other_hashes, other, 0, 3, bs, "map")], "map"))
    expect_scores(server, {"model": MODEL, "token_ids": other, "pods": ["pod-r"]}, {"pod-r": 3})
    expect_scores(server, body, {"pod-r": 0})
    m = server.metrics()
    if m.get("kvcore_index_subscriber_restarts_total") != 1 or m.get("kvcore_index_subscriber_restart_clears_total") != 1:
        fail("restart not counted: %r" % {k: v for k, v in m.items() if "restart" in k})
    server.stop(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
    router.close()
    pub.close()
    ctx.term()


# Set by ctest from the build's KVCORE_REDIS; run by hand, the script assumes Redis is built in.
WITH_REDIS = os.environ.get("KVCORE_BUILT_WITH_REDIS", "1") not in ("0", "OFF", "")


def usage_errors(kvcore):
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = "127.0.0.1:%d" % taken.getsockname()[1]
    for args, want in [(["--zmq-bind", "tcp://127.0.0.1:0", "--http", busy], "cannot listen"),(["--http", "127.0.0.1:0"], "give --zmq-bind or at least one --engine"),
                       (["--zmq-bind", "tcp://127.0.0.1:0", "--redis", "ftp://127.0.0.1:6379"], "--redis"),
                       (["--zmq-bind", "tcp://127.0.0.1:0", "--redis", "redis://127.0.0.1:6379", "--score-cache", "10"],
                        "--score-cache" if WITH_REDIS else "built without Redis"),
                       (["--zmq-bind", "nonsense://x", "--http", "127.0.0.1:0"], "nonsense://x"),
                       (["--zmq-bind", "tcp://127.0.0.1:0", "--http", "nowhere"], "HOST:PORT"),
                       (["--zmq-bind", "tcp://127.0.0.1:0", "--hash", "xxh3", "--engine-keys", "direct"], "sha256_cbor")]:
        r = subprocess.run([kvcore, "serve-index"] + args, capture_output=True, text=True, timeout=DEADLINE_S)
        if r.returncode != 1 or want not in r.stderr:
            fail("serve-index %s: exit %d, stderr %r; want 1 and %r" % (" ".join(args), r.returncode, r.stderr, want))
    taken.close()


def redis_replicas(kvcore):
    """Two serve-index replicas share one index through a real redis-server: the engine's events reach
    replica A only, and replica B scores them."""
    import shutil
    import socket
    import tempfile
    if not WITH_REDIS:
        print("serve-index: built without Redis, the Redis replicas case is skipped")
        return
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        print("serve-index: redis-server not installed, the Redis replicas case is skipped")
        return
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    work = tempfile.mkdtemp()
    redis = subprocess.Popen([server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                              "no", "--dir", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    return c.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        until("redis-server answering PING", ready)
        url = "redis://127.0.0.1:%d" % port
        common = ["--zmq-bind", "tcp://127.0.0.1:0", "--hash", "sha256_cbor", "--seed", "42", "--redis", url]
        a = Server(kvcore, common)
        b = Server(kvcore, common)
        if not any(("entries shared in Redis at " + url) in l for l in a.output):
            fail("the startup lines do not name the Redis server")
        ctx = zmq.Context()
        pub = ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(a.zmq_bind)
        wait_subscribed(pub)
        tokens = list(range(5000, 5000 + 16 * 6))
        hashes = [0x1000 + i for i in range(6)]
        send(pub, "pod-r", 0, batch([chain(hashes, tokens, 0, 6, 16, "map")], "map"))
        # Direct keys: the events' hashes are the index's keys, so replica B scores them by block_hashes.
        expect_scores(b, {"model": MODEL, "block_hashes": hashes, "pods": ["pod-r", "pod-x"]}, {"pod-r": 6, "pod-x": 0})
        expect_scores(a, {"model": MODEL, "block_hashes": hashes[:4], "pods": ["pod-r"]}, {"pod-r": 4})
        a.stop()
        b.stop()
        pub.close()
        ctx.term()
    finally:
        redis.terminate()
        redis.wait(timeout=DEADLINE_S)
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    kvcore, data_dir = sys.argv[1], sys.argv[2]
    usage_errors(kvcore)
    bind_mode_with_vllm_hashes(kvcore, data_dir)
    connect_mode_with_gap_and_restart(kvcore)
    redis_replicas(kvcore)
    print("serve-index: bind and connect modes, both encodings, vLLM's hashes, replay, restart, metrics, "
          "health and bad requests as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())

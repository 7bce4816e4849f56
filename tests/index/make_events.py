# SPDX-License-Identifier: Apache-2.0
"""Writes vLLM KV event batches with Python's msgpack (independent of kvcore's encoder), in every
encoding in use, each as NAME.msgpack beside NAME.json (what a decoder must read from it) or
NAME.error (a text the decoder's error message must contain).

usage: make_events.py OUTDIR [--corpus]   (--corpus: payloads only, for the fuzz seed corpus)
"""
import json
import os
import random
import sys

import msgpack

U64 = (1 << 64) - 1
MEDIA = ["GPU", "CPU", "gpu", "Fs", "OBJ", None]
STORED_FIELDS = ["block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium",
                 "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind",
                 "kv_cache_spec_sliding_window", "locality"]
REMOVED_FIELDS = ["block_hashes", "medium", "group_idx", "locality"]


def wire_hash(rng, value):
    """One hash as a producer may write it: uint64, int64 (Python's hash() may be negative) or the
    digest's bytes (sha256: 32, the value in the last 8 big-endian)."""
    form = rng.randrange(4)
    if form == 0 or form == 1 and value < (1 << 63):
        return value
    if form == 1:
        return value - (1 << 64)  # int64 with the same bits
    if form == 2:
        return bytes(rng.randrange(256) for _ in range(24)) + value.to_bytes(8, "big")
    return value.to_bytes(8, "big")


def medium_out(medium):
    if medium is None:
        return "GPU"
    return medium.upper() if medium.upper() in ("GPU", "CPU", "FS", "OBJ") else "OTHER"


def stored_event(rng):
    blocks = rng.randrange(1, 6)
    block_size = rng.choice([1, 4, 16])
    hashes = [rng.randrange(1 << 64) for _ in range(blocks)]
    parent = rng.choice([None, rng.randrange(1 << 64)])
    offload = rng.random() < 0.2  # CPU offload publishes blocks without tokens
    tokens = [] if offload else [rng.randrange(1 << 31) for _ in range(blocks * block_size)]
    lora_name = rng.choice([None, "alice", "tenant-adapter"])
    lora_id = rng.choice([None, 1, 7]) if lora_name else None
    extra = None
    if rng.random() < 0.6:
        extra = []
        for b in range(blocks):
            keys = []
            if lora_name:
                keys.append(lora_name)
            if rng.random() < 0.5:
                keys.append(["mm-%d" % rng.randrange(3), rng.randrange(-40, block_size)])
            if b == 0 and rng.random() < 0.3:
                keys.append("salt")
            if rng.random() < 0.2:
                keys.append(bytes(rng.randrange(256) for _ in range(32)))  # a prompt-embeds hash
            extra.append(keys or None)
    window = rng.choice([None, 64, 4096])
    fields = {
        "block_hashes": [wire_hash(rng, h) for h in hashes],
        "parent_block_hash": None if parent is None else wire_hash(rng, parent),
        "token_ids": tokens,
        "block_size": block_size,
        "lora_id": lora_id,
        "medium": rng.choice(MEDIA),
        "lora_name": lora_name,
        "extra_keys": extra,
        "group_idx": rng.choice([None, 0, 1]),
        "kv_cache_spec_kind": "sliding_window" if window else rng.choice([None, "full_attention", "mamba"]),
        "kv_cache_spec_sliding_window": window,
        "locality": rng.choice([None, "LOCAL", "remote"]),
    }
    expected = {
        "type": "BlockStored",
        "block_hashes": hashes,
        "parent_block_hash": parent,
        "token_ids": tokens,
        "block_size": block_size,
        "lora_id": lora_id,
        "lora_name": lora_name or "",
        "medium": medium_out(fields["medium"]),
        "extra_keys": [None if k is None else [expect_key(x) for x in k] for k in extra] if extra else [],
        "group_idx": fields["group_idx"] or 0,
        "kv_cache_spec_kind": {None: "UNSPECIFIED", "full_attention": "FULL_ATTENTION",
                               "sliding_window": "SLIDING_WINDOW"}.get(fields["kv_cache_spec_kind"], "OTHER"),
        "kv_cache_spec_sliding_window": window,
        "locality": (fields["locality"] or "UNSPECIFIED").upper(),
    }
    return "BlockStored", STORED_FIELDS, fields, expected


def expect_key(key):
    if isinstance(key, str):
        return ["text", key]
    if isinstance(key, bytes):
        return ["bytes", key.hex()]
    return ["mm", key[0], key[1]]


def removed_event(rng):
    hashes = [rng.randrange(1 << 64) for _ in range(rng.randrange(1, 5))]
    fields = {"block_hashes": [wire_hash(rng, h) for h in hashes], "medium": rng.choice(MEDIA),
              "group_idx": rng.choice([None, 2]), "locality": rng.choice([None, "Local"])}
    expected = {"type": "BlockRemoved", "block_hashes": hashes, "medium": medium_out(fields["medium"]),
                "group_idx": fields["group_idx"] or 0, "locality": (fields["locality"] or "UNSPECIFIED").upper()}
    return "BlockRemoved", REMOVED_FIELDS, fields, expected


def wire_event(rng, kind, names, fields, as_map):
    """A tagged array (vLLM until mid-2026: every field, trailing ones possibly cut) or a map with
    "type" (msgspec omit_defaults: None-valued optional fields left out, an unknown one sometimes added)."""
    if as_map:
        event = {"type": kind}
        for name in names:
            if fields[name] is not None or name in ("parent_block_hash", "lora_id", "medium", "lora_name"):
                event[name] = fields[name]
        if rng.random() < 0.3:
            event["added_by_a_newer_vllm"] = {"nested": [1, [2, None], b"x"]}
        return event
    values = [fields[name] for name in names]
    keep = len(values)
    while keep > 4 and values[keep - 1] is None and rng.random() < 0.7:
        keep -= 1  # an older vLLM's shorter event
    values = values[:keep]
    if rng.random() < 0.2:
        values.append("a field after those the decoder knows")
    return [kind] + values


def batch(rng, index):
    events, expected = [], []
    as_map_events = rng.random() < 0.5
    unknown = 0
    for _ in range(rng.randrange(0, 6)):
        r = rng.random()
        if r < 0.55:
            kind, names, fields, exp = stored_event(rng)
        elif r < 0.85:
            kind, names, fields, exp = removed_event(rng)
        elif r < 0.95:
            events.append({"type": "AllBlocksCleared"} if as_map_events else ["AllBlocksCleared"])
            expected.append({"type": "AllBlocksCleared"})
            continue
        else:
            events.append({"type": "BlockPinned", "x": 1} if as_map_events else ["BlockPinned", [1]])
            unknown += 1
            continue
        events.append(wire_event(rng, kind, names, fields, as_map_events))
        expected.append(exp)
    ts = 1700000000 + index + rng.choice([0.25, 0.0])
    rank = rng.choice([None, 0, 3])
    form = rng.randrange(4)
    if form == 0:
        payload = [ts, events, rank]
    elif form == 1:
        payload = [ts, events]  # no rank at all
        rank = None
    elif form == 2:
        payload = {"ts": ts, "events": events, "data_parallel_rank": rank, "fork_field": [1, 2]}
    else:
        ts = int(ts)  # some forks write an integer ts
        payload = {"events": events, "ts": ts}
        rank = None
    packed = msgpack.packb(payload, use_bin_type=True, use_single_float=False)
    return packed, {"ts": float(ts), "data_parallel_rank": rank, "unknown_events": unknown, "events": expected}


def malformed():
    """Batches a decoder must refuse, with a part of the message it must give."""
    stored = ["BlockStored", [1, 2], None, list(range(7)), 4]  # 7 tokens for 2 blocks of 4
    yield "partial_block", [1.0, [stored], 0], "field token_ids: 7 token ids for 2 blocks of 4"
    yield "no_hashes", [1.0, [{"type": "BlockRemoved", "block_hashes": []}]], "no block hashes"
    yield "zero_block_size", [1.0, [["BlockStored", [1], None, [], 0]]], "block_size is 0"
    yield "short_hash", [1.0, [["BlockRemoved", [b"\x01\x02"]]]], "a hash of 2 bytes"


def main():
    out = sys.argv[1]
    corpus = "--corpus" in sys.argv
    os.makedirs(out, exist_ok=True)
    rng = random.Random(13)
    for i in range(40):
        packed, expected = batch(rng, i)
        with open(os.path.join(out, "batch_%02d.msgpack" % i), "wb") as f:
            f.write(packed)
        if not corpus:
            with open(os.path.join(out, "batch_%02d.json" % i), "w") as f:
                json.dump(expected, f)
    for name, payload, message in malformed():
        with open(os.path.join(out, name + ".msgpack"), "wb") as f:
            f.write(msgpack.packb(payload, use_bin_type=True))
        if not corpus:
            with open(os.path.join(out, name + ".error"), "w") as f:
                f.write(message)


if __name__ == "__main__":
    main()

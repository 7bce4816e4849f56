#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore hash must print vLLM's own 25 block hashes for vLLM's own prompt.
set -eu
kvcore=$1 data=$2
"$kvcore" hash --algo sha256_cbor --seed 42 --block-size 16 < "$data/vllm_tokens.txt" | diff - "$data/vllm_block_hashes.txt"
# Bad input is refused with a message, not hashed.
if echo "1 -2 3" | "$kvcore" hash 2>/dev/null; then echo "negative token accepted"; exit 1; fi
echo "kvcore hash: 25 hashes match vLLM"

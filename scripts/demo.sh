#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds the kvcore program, and runs the main job: `kvcore demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev --target kvcore_cli
exec build/dev/tools/kvcore/kvcore demo "$@"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds the kvcore program, and runs the main job: `kvcore demo`.
# Stdout carries the demo alone (it can be piped or diffed); set-up and build progress go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
cmake --preset dev >&2
cmake --build --preset dev --target kvcore_cli >&2
exec build/dev/tools/kvcore/kvcore demo "$@"

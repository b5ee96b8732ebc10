#!/usr/bin/env bash
# The main job, from a fresh machine: set up, build an eval image (benchmark terminal-lite,
# task count-lines, agent oracle, and everything under it) and run it on the Docker Engine
# (first printing the commands that build it), then show the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --release -p kiln
kiln=target/release/kiln
out="${KILN_DEMO_OUTPUT:-results}"
"$kiln" build eval terminal-lite --agent oracle --task-id count-lines --dry-run --backend engine
"$kiln" run terminal-lite --agent oracle --task-id count-lines --output "$out"
"$kiln" report "$out"

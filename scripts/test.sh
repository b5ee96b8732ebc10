#!/usr/bin/env bash
# Runs every test: unit tests, bake parity, and the tests against the real Docker Engine,
# podman and a headless Chromium (the HTML report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KILN_TEST_DOCKER=1 KILN_TEST_PODMAN=1 KILN_TEST_BROWSER=1
cargo test --workspace --locked

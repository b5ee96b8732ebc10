#!/usr/bin/env bash
# Runs every test: unit tests, bake parity, and the tests against the real Docker Engine and podman.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KILN_TEST_DOCKER=1 KILN_TEST_PODMAN=1 KILN_TEST_BUILDX=1
# A real BuildKit daemon as the `remote` builder kiln-remote (shared by the machine:
# started when it does not answer, never stopped here). Without it the remote-builder
# tests say why and skip.
remote=../shared/tools/buildkit-remote.sh
if [ -f "$remote" ]; then
  if bash "$remote" status || bash "$remote" start; then
    export KILN_TEST_BUILDKIT=1
  else
    echo "test.sh: the remote BuildKit builder did not start; its tests are skipped" >&2
  fi
else
  echo "test.sh: $remote not found; the remote BuildKit tests are skipped" >&2
fi
cargo test --workspace --locked

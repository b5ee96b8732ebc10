#!/usr/bin/env bash
# Runs every test: unit tests, bake parity, and the tests against the real Docker Engine,
# podman and a headless Chromium (the HTML report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KILN_TEST_DOCKER=1 KILN_TEST_PODMAN=1 KILN_TEST_BUILDX=1 KILN_TEST_BROWSER=1 KILN_TEST_K8S=1
# Recorded streams replay at once in tests (the pacing test sets its own speeds).
export KILN_REPLAY_SPEED=max
# A real BuildKit daemon as the `remote` builder kiln-remote: one already running is used
# and left running; one started here is stopped at the end. Without it the remote-builder
# tests say why and skip.
remote=../shared/tools/buildkit-remote.sh
stop_remote=0
if [ -f "$remote" ]; then
  if bash "$remote" status || { bash "$remote" start && stop_remote=1; }; then
    export KILN_TEST_BUILDKIT=1
  else
    echo "test.sh: the remote BuildKit builder did not start; its tests are skipped" >&2
  fi
else
  echo "test.sh: $remote not found; the remote BuildKit tests are skipped" >&2
fi
# The Kubernetes tests bring up the one-node cluster of ../shared/tools/k8s themselves;
# it is stopped at the end (KILN_K8S_KEEP=1 leaves it up).
export KILN_K8S_TOOLS="${KILN_K8S_TOOLS:-$(cd .. && pwd)/shared/tools/k8s}"
cleanup() {
  if [ "${KILN_K8S_KEEP:-0}" != 1 ]; then
    bash "$KILN_K8S_TOOLS/down.sh" >/dev/null 2>&1 || true
  fi
  if [ "$stop_remote" = 1 ]; then
    bash "$remote" stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
# Compile once (the `cargo test --workspace` set: libraries, binaries, examples, tests),
# then run every test executable, two at a time (scripts/test-lanes.sh; KILN_TEST_LANES=1:
# one at a time, as `cargo test --workspace --locked` would).
cargo test --workspace --locked --no-run
bash scripts/test-lanes.sh

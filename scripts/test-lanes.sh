#!/usr/bin/env bash
# Runs the workspace's tests, already compiled by `cargo test --workspace --no-run`, in
# KILN_TEST_LANES lanes at once (default 2): most test executables wait on the engine,
# a registry, the network or the cluster, so two of them share the machine's cores well.
#
# Each test executable runs as `cargo test --workspace --test NAME` (same environment,
# working directory and feature set as one `cargo test --workspace`; nothing is rebuilt),
# its output kept whole and printed in one piece when it ends, so lanes never interleave.
# Every executable runs even when one fails; the exit status is 1 when any failed.
#
# Order: the slowest first (longest first keeps the lanes even); the executables that
# build or use the mini-swe-agent images run one after the other in one lane, so the
# agent and its eval images are built once and shared. Any other test executable is
# found by `cargo metadata` and runs after those, in name order.
set -euo pipefail
cd "$(dirname "$0")/.."

lanes="${KILN_TEST_LANES:-2}"
# Known slow, longest first (docs/performance.md, "Test suite time"). Words joined by
# `+` run in that order in one lane:
# - the mini-swe-agent users with the other Harbor trial tests (they check that no
#   `kiln-harbor-*` container is left, which a trial of another test would be);
# - the eval-containers pair (the same fleet, the same tags);
# - every test that builds with podman: podman's store is not safe against a build
#   interrupted (or images removed) beside another build, which then finds a cached
#   layer gone ("layer not known"); the unit tests read every image podman lists.
slow=(
  harbor_run+harbor_layout+release_harbor+model_run+run_kubernetes
  eval_containers_build+eval_containers_parity
  build_bake+build_fleet+build_podman+build_interrupt+backend_fallback+new_agent+plan_golden+plan_bad_input+registry_tls_netns+unit
  validate_fleet
  release_faults
  new_benchmark
  regrade
)

logs="$(mktemp -d "${TMPDIR:-/tmp}/kiln-tests.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

all_tests=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
names = {t["name"] for p in m["packages"] for t in p["targets"] if t["kind"] == ["test"]}
print("\n".join(sorted(names)))')

queued=" "
queue=()
for item in "${slow[@]}"; do
  queue+=("$item")
  queued+="${item//+/ } "
done
while read -r t; do
  [[ "$queued" == *" $t "* ]] || queue+=("$t")
done <<<"$all_tests"
# The unit tests of every crate (libraries and binaries) and the doc tests.
for t in unit doc; do
  [[ "$queued" == *" $t "* ]] || queue+=("$t")
done
printf '%s\n' "${queue[@]}" >"$logs/queue"

# Takes the next queue item (under a lock: lanes take turns).
next() {
  flock 8
  head -n1 "$logs/queue"
  sed -i 1d "$logs/queue"
} 8>"$logs/queue.lock"

run_one() {
  local t="$1" args status start=$SECONDS
  case "$t" in
    unit) args=(--lib --bins) ;;
    doc) args=(--doc) ;;
    *) args=(--test "$t") ;;
  esac
  if cargo test --workspace --locked --no-fail-fast "${args[@]}" >"$logs/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
    echo "$t" >>"$logs/failed"
  fi
  {
    flock 9
    echo "==== $t: $status in $((SECONDS - start)) s"
    cat "$logs/$t.log"
  } 9>"$logs/print.lock"
}

lane() {
  local item t
  while item="$(next)" && [ -n "$item" ]; do
    for t in ${item//+/ }; do
      run_one "$t"
    done
  done
}

start=$SECONDS
pids=()
for _ in $(seq "$lanes"); do
  lane &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid"
done

# One closing line over all executables (each printed its own `test result:` above).
read -r passed failed ignored < <(cat "$logs"/*.log | sed -nE \
  's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' |
  awk '{p += $1; f += $2; i += $3} END {print p + 0, f + 0, i + 0}')
echo "test-lanes: ${#queue[@]} queue items in $((SECONDS - start)) s over $lanes lanes"
if [ -s "$logs/failed" ]; then
  echo "test-lanes: failed: $(tr '\n' ' ' <"$logs/failed")(rerun one: cargo test --workspace --test NAME)"
  failed=$((failed > 0 ? failed : 1))
fi
echo "tests: $passed passed, $failed failed, $ignored skipped"
[ ! -s "$logs/failed" ]

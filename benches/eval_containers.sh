#!/usr/bin/env bash
# kiln against the eval-containers fleet's own CLI, on the same copy of the fleet, in one
# hyperfine run: a dry run of every agent and every shared-env benchmark (one invocation
# per name, as a script would loop), and `kiln list` of the whole fleet.
#
#   benches/eval_containers.sh KILN UPSTREAM_CLI FLEET_COPY [RUNS]
#
# UPSTREAM_CLI: `cargo build --release` in FLEET_COPY/cli (crates from crates.io).
set -euo pipefail
kiln=$(realpath "$1"); upstream=$(realpath "$2"); fleet=$(realpath "$3"); runs=${4:-5}
cd "$fleet"
agents=$("$kiln" list agents --json | python3 -c 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)))')
benchmarks=$("$kiln" list benchmarks --json | python3 -c 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin) if r["env"] == "shared-env"))')
export KILN="$kiln" UPSTREAM="$upstream" AGENTS="$agents" BENCHMARKS="$benchmarks"
hyperfine --runs "$runs" --warmup 1 -N --export-markdown /dev/stdout \
  -n 'kiln build --dry-run (every agent and benchmark)' \
  "bash -c 'for a in \$AGENTS; do \$KILN build agent \$a --dry-run; done >/dev/null; for b in \$BENCHMARKS; do \$KILN build benchmark \$b --dry-run; done >/dev/null'" \
  -n 'eval-containers build --dry-run (same names)' \
  "bash -c 'for a in \$AGENTS; do \$UPSTREAM build agent \$a --dry-run; done 2>/dev/null; for b in \$BENCHMARKS; do \$UPSTREAM build bench \$b --dry-run; done 2>/dev/null'" \
  -n 'kiln list benchmarks + agents' \
  "bash -c '\$KILN list benchmarks >/dev/null && \$KILN list agents >/dev/null'"

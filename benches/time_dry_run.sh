#!/usr/bin/env bash
# Times `kiln build all --dry-run` (podman commands) on generated fleets:
# the issue's fleet (100 shared-env benchmarks, 20 agents, one per-task benchmark with
# 2,000 tasks) and 10 / 100 / 1,000 benchmarks (20 agents, 20 per-task tasks) for growth.
# Needs hyperfine and a release build: cargo build --release -p kiln
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
kiln=${KILN:-$here/../target/release/kiln}
work=${WORK:-/tmp/kiln-fleets}
"$here/gen_fleet.sh" "$work/issue" 100 20 2000 >/dev/null
for n in 10 100 1000; do "$here/gen_fleet.sh" "$work/n$n" "$n" 20 20 >/dev/null; done
hyperfine -N -w 1 -r "${RUNS:-5}" --output=pipe \
  "$kiln -C $work/issue build all --dry-run --backend podman" \
  "$kiln -C $work/n10 build all --dry-run --backend podman" \
  "$kiln -C $work/n100 build all --dry-run --backend podman" \
  "$kiln -C $work/n1000 build all --dry-run --backend podman"

#!/bin/sh
# Times `kiln bake --print` on generated fleets of 10, 100 and 1000 benchmark files
# (hyperfine, whole process, median of many runs), next to a parse-only loop and the
# library's repeated resolution. usage: crates/bake/benches/run.sh [KILN_BINARY]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
kiln=${1:-$repo/target/release/kiln}
timing=$repo/target/release/examples/bake_timing
[ -x "$timing" ] || cargo build --release -p kiln-bake --example bake_timing --manifest-path "$repo/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 10 100 1000; do
  dir=$work/fleet$n
  args=$(python3 "$here/gen_fleet.py" "$dir" "$n")
  count=$(echo "$args" | wc -w); count=$((count / 2))
  echo "== N=$n benchmark files ($count files in total)"
  (cd "$dir" && hyperfine -N --warmup 5 --runs 100 --style basic --export-json "$work/h$n.json" \
      "$kiln bake $args --print eval-local" "$kiln bake $args --print" >/dev/null)
  python3 - "$work/h$n.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    what = "eval-local" if r["command"].endswith("eval-local") else "default group"
    print(f"  kiln bake --print {what:14s} median {r['median']*1e3:7.2f} ms  (mean {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f}, {len(r['times'])} runs)")
PY
  # shellcheck disable=SC2086
  (cd "$dir" && "$timing" parse . $(echo "$args" | sed 's/-f //g') | sed 's/^/  /')
  (cd "$dir" && "$timing" resolve 2000 benchmark-bench0000 . $(echo "$args" | sed 's/-f //g') | sed 's/^/  /')
done

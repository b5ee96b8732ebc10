#!/usr/bin/env bash
# Every benchmark of issue 13 beside its anchor, each pair in ONE hyperfine run, then one
# markdown table (median, whole process). A row whose tool or image is missing prints n/a;
# the script never stops on a failed row.
#
#   benches/run.sh                 # all rows
#   ROWS="bake dry" benches/run.sh # some: bake, bake1000, dry, run, podman
#
# Needs hyperfine (apt-get install hyperfine), python3 and a release build
# (cargo build --release -p kiln). The run and podman rows need the eval image
# terminal-lite/count-lines × oracle built (kiln build eval terminal-lite --agent oracle
# --task-id count-lines) and the runner binary (see RULES.md); the bake rows' anchor needs
# `docker buildx`. Other load on the machine shows in the figures: say so beside them.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
repo=$(cd "$here/.." && pwd)
kiln=${KILN:-$repo/target/release/kiln}
rows=${ROWS:-bake bake1000 dry run podman}
work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
table=$work/table.md
: >"$table"

command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install hyperfine)" >&2; exit 2; }
[ -x "$kiln" ] || { echo "no $kiln: cargo build --release -p kiln" >&2; exit 2; }

# row NAME GOAL -- hyperfine args...: runs hyperfine, appends "| name | kiln | anchor | ratio | goal |".
# The first command is kiln's, the second (if any) the anchor.
row() {
  local name=$1 goal=$2
  shift 3
  local json=$work/$RANDOM.json
  if hyperfine --style basic --export-json "$json" "$@" >"$work/last.log" 2>&1; then
    python3 - "$json" "$name" "$goal" >>"$table" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
def fmt(s):
    return f"{s*1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
k = res[0]["median"]
anchor = fmt(res[1]["median"]) if len(res) > 1 else "–"
ratio = f"{k / res[1]['median']:.2f}×" if len(res) > 1 else "–"
print(f"| {sys.argv[2]} | {fmt(k)} | {anchor} | {ratio} | {sys.argv[3]} |")
PY
  else
    echo "| $name | n/a | n/a | – | $goal |" >>"$table"
    echo "row '$name' failed; hyperfine said:" >&2
    tail -5 "$work/last.log" >&2
  fi
}

# rounds NAME GOAL N -- hyperfine args...: like `row`, but as N short hyperfine runs of two
# runs per command, so the kiln and anchor runs alternate through the whole measurement
# (a slow patch of the machine then hits both, not only whichever ran during it); the
# medians are over every run of every round.
rounds() {
  local name=$1 goal=$2 n=$3
  shift 4
  local jsons=()
  for _ in $(seq "$n"); do
    local json=$work/$RANDOM.json
    if ! hyperfine --style basic --export-json "$json" --runs 2 "$@" >"$work/last.log" 2>&1; then
      echo "| $name | n/a | n/a | – | $goal |" >>"$table"
      echo "row '$name' failed; hyperfine said:" >&2
      tail -5 "$work/last.log" >&2
      return
    fi
    jsons+=("$json")
  done
  python3 - "$name" "$goal" "${jsons[@]}" >>"$table" <<'PY'
import json, statistics, sys
runs = [json.load(open(f))["results"] for f in sys.argv[3:]]
k = statistics.median(t for r in runs for t in r[0]["times"])
a = statistics.median(t for r in runs for t in r[1]["times"])
fmt = lambda s: f"{s*1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
print(f"| {sys.argv[1]} | {fmt(k)} | {fmt(a)} | {k / a:.2f}× | {sys.argv[2]} |")
PY
}

want() { case " $rows " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

bake_row() {
  local n=$1 label=$2 goal=$3
  local dir=$work/bake$n args
  args=$(python3 "$repo/crates/bake/benches/gen_fleet.py" "$dir" "$n") || return
  local count=$(($(echo "$args" | wc -w) / 2))
  cd "$dir" || return
  # buildx writes progress to stderr; --progress=quiet is not in 0.13, so drop stderr.
  row "$label ($count files)" "$goal" -- -N --warmup 3 --runs "${BAKE_RUNS:-40}" \
    "$kiln bake $args --print eval-local" \
    "docker buildx bake $args --print eval-local"
  # The same without kiln's answer cache: every file parsed and evaluated.
  KILN_BAKE_CACHE=0 row "… with the cache off (KILN_BAKE_CACHE=0), $count files" "$goal" -- \
    -N --warmup 3 --runs "${BAKE_RUNS:-40}" \
    "$kiln bake $args --print eval-local" \
    "docker buildx bake $args --print eval-local"
  cd "$repo" || exit 1
}

want bake && bake_row 100 '`kiln bake --print eval-local` vs `docker buildx bake --print`' 'under 4 ms, ≥ 25×'
want bake1000 && bake_row 1000 '`kiln bake --print eval-local`, 1,000 benchmarks, vs buildx' 'linear'

if want dry; then
  "$here/gen_fleet.sh" "$work/issue" 100 20 2000 >/dev/null
  "$here/gen_fleet.sh" "$work/half" 50 20 1000 >/dev/null
  row '`kiln build all --dry-run`, 100 benchmarks / 20 agents / 2,000 tasks (44k images)' 'under 0.5 s' -- \
    -N --warmup 1 --runs "${DRY_RUNS:-10}" \
    "$kiln -C $work/issue build all --dry-run --backend podman"
  row '… the same at half size (50 / 20 / 1,000: 22k images), for linearity' 'half the above' -- \
    -N --warmup 1 --runs "${DRY_RUNS:-10}" \
    "$kiln -C $work/half build all --dry-run --backend podman"
  # Without --backend: what kiln picks on this machine (bake, one definition per image
  # on BuildKit v0.8; podman when buildx is missing).
  row '… the same, backend chosen by kiln' 'under 0.5 s' -- \
    -N --warmup 1 --runs "${DRY_RUNS:-10}" \
    "$kiln -C $work/issue build all --dry-run"
fi

if want run; then
  bench=terminal-lite task=count-lines
  image=$("$kiln" -C "$repo" build eval "$bench" --agent oracle --task-id "$task" --dry-run --backend engine 2>/dev/null |
    grep -o 'kiln.local/evals/[^ ]*' | tail -1)
  image=${image:-kiln.local/evals/$bench-$task--oracle:dev}
  out=$work/results
  # RULES.md's by-hand equivalent of an oracle run: create, copy the solution in
  # (`docker cp solutions C:/kiln/`), start attached, copy /output out (kiln keeps it),
  # remove. Any failing step fails the command, so hyperfine cannot time a short cut.
  rm -rf "$work/solutions" && mkdir -p "$work/solutions"
  cp -r "$repo/benchmarks/$bench/tasks/$task/solution" "$work/solutions/$task"
  cat >"$work/by-hand.sh" <<SH
set -e
c=\$(docker create $image)
docker cp $work/solutions \$c:/kiln/
docker start -a \$c >/dev/null
docker cp \$c:/output - >/dev/null
docker rm -f \$c >/dev/null
SH
  row '`kiln run --no-build`, terminal-lite/count-lines × oracle, built' 'at most 1.15×' -- \
    --warmup 1 --runs "${RUN_RUNS:-10}" \
    "cd $repo && $kiln run $bench --agent oracle --task-id $task --no-build --force --output $out >/dev/null" \
    "bash $work/by-hand.sh"
  row '… anchor 2: `docker run` of the same image' 'informative' -- \
    --warmup 1 --runs "${RUN_RUNS:-10}" \
    "cd $repo && $kiln run $bench --agent oracle --task-id $task --no-build --force --output $out >/dev/null" \
    "docker run --rm $image >/dev/null"
  row '`kiln run` with its up-to-date check, vs `--no-build`' 'at most 100 ms more' -- \
    --warmup 1 --runs "${RUN_RUNS:-10}" \
    "cd $repo && $kiln run $bench --agent oracle --task-id $task --force --output $out >/dev/null" \
    "cd $repo && $kiln run $bench --agent oracle --task-id $task --no-build --force --output $out >/dev/null"
fi

if want podman; then
  # The same work both ways: `--force` rebuilds the benchmark and the base it is built
  # on, so the anchor is every `podman build` command kiln prints for it, in order.
  what=(benchmark metric-definition-audit)
  cmd=$("$kiln" -C "$repo" build "${what[@]}" --backend podman --dry-run 2>/dev/null |
    grep '^podman build' | sed 's/$/ >\/dev\/null/' | paste -sd'&' | sed 's/&/ \&\& /g')
  if [ -n "$cmd" ]; then
    rounds '`kiln build --force` (podman) vs its `podman build` commands (base + benchmark)' 'at most 1.05×' \
      "${PODMAN_ROUNDS:-5}" -- \
      "cd $repo && $kiln build ${what[*]} --backend podman --force --progress quiet >/dev/null" \
      "cd $repo && $cmd"
  else
    echo "| \`kiln build\` (podman) vs \`podman build\` | n/a | n/a | – | at most 1.05× |" >>"$table"
  fi
fi

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| figure | kiln | anchor, same run | kiln / anchor | goal |"
echo "|---|---|---|---|---|"
cat "$table"

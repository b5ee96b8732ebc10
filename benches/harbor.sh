#!/usr/bin/env bash
# Harbor datasets: kiln's speed on large datasets, and `kiln validate` against Harbor
# 0.26.0's own trials of the same task on the same base.
#
#   benches/harbor.sh KILN HARBOR EXAMPLES [RUNS] [HARBOR_RUNS]
#
# 1. Datasets of 1,000, 2,500 and 5,000 copies of Harbor's hello-world task (distinct
#    folder and [task].name), then `kiln list tasks` and `kiln build benchmark --dry-run`
#    with a base map (ubuntu:24.04 → the local Debian base, as an air-gapped site maps
#    it) on each: RUNS runs (default 10) after a warm-up; the dry run as users run it
#    (backend probed: bake here), with `--backend engine` (no probe: the per-task part),
#    and of 5,000 tasks with kiln's cache emptied before every run.
# 2. hello-user, copied twice: kiln's copy validated with the base map; Harbor's copy
#    gets `FROM debian:bookworm-slim` in its Dockerfile (nothing can be pulled here), so
#    both build on the same local base. One hyperfine run, HARBOR_RUNS runs (default 5)
#    after a warm-up: `kiln validate --force` (the image rebuilt from the layer cache and
#    both trials run, the recorded verdict ignored), `kiln validate` with the image up to
#    date and the recorded verdict removed before each run, `harbor run -a oracle` then
#    `harbor run -a nop` (Harbor's defaults: it builds the image and removes it after
#    each trial), and one Harbor job running both agents (agents: [oracle, nop]).
#
# KILN: a release build (target/release/kiln). HARBOR: the `harbor` of a venv with
# harbor==0.26.0; Harbor needs `docker compose` (v2). EXAMPLES:
# ../shared/fleets/harbor/examples/tasks. Needs hyperfine, python3 and the local bases
# (scripts/make-bases.sh). Everything is made in a temporary folder, kiln's cache too.
set -euo pipefail
kiln=$(realpath "$1"); harbor=$(realpath -s "$2"); examples=$(realpath "$3")
runs=${4:-10}; harbor_runs=${5:-5}
work=$(mktemp -d /tmp/kiln-harbor-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" LITELLM_LOCAL_MODEL_COST_MAP=True HARBOR_TELEMETRY=0
base=debian:bookworm-slim
echo "ubuntu:24.04=$base" > "$work/bases.map"

# n copies of a task, each folder task-NNNN with [task].name = "bench/task-NNNN".
copies() {
  python3 - "$1" "$2" "$3" <<'EOF'
import os, re, shutil, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst)
toml = open(os.path.join(src, "task.toml")).read()
w = len(str(n))
for i in range(1, n + 1):
    d = os.path.join(dst, f"task-{i:0{w}d}")
    shutil.copytree(src, d, symlinks=True)
    named = re.sub(r'(?m)^name = "[^"]*"', f'name = "bench/task-{i:0{w}d}"', toml, count=1)
    open(os.path.join(d, "task.toml"), "w").write(named)
EOF
}

table() { cat "$work/table.md"; echo; }

sizes=(1000 2500 5000)
for n in "${sizes[@]}"; do copies "$examples/hello-world" "$work/tasks$n" "$n"; done
echo "datasets: ${sizes[*]} tasks under $work"

list=() dry=() engine=()
for n in "${sizes[@]}"; do
  list+=(-n "list tasks ($n tasks)" "$kiln -C $work/tasks$n list tasks tasks$n")
  dry+=(-n "build --dry-run --base-map ($n tasks)"
    "$kiln -C $work/tasks$n build benchmark tasks$n --dry-run --base-map $work/bases.map")
  engine+=(-n "build --dry-run --backend engine --base-map ($n tasks)"
    "$kiln -C $work/tasks$n build benchmark tasks$n --dry-run --backend engine --base-map $work/bases.map")
done
hyperfine -N --warmup 1 --runs "$runs" --export-markdown "$work/table.md" "${list[@]}"
table
# The backend chosen by probing this machine (buildx → bake), as users run it.
hyperfine -N --warmup 1 --runs "$runs" --export-markdown "$work/table.md" "${dry[@]}"
table
# A given backend probes nothing: the per-task part alone, for its growth.
hyperfine -N --warmup 1 --runs "$runs" --export-markdown "$work/table.md" "${engine[@]}"
table
# The same dry run of 5,000 tasks with kiln's cache emptied before each run.
hyperfine -N --runs "$runs" --prepare "rm -rf $XDG_CACHE_HOME/kiln" \
  --export-markdown "$work/table.md" -n "build --dry-run --base-map (5000 tasks, empty cache)" \
  "$kiln -C $work/tasks5000 build benchmark tasks5000 --dry-run --base-map $work/bases.map"
table
# What the dry run wrote: one shared Dockerfile and the bake file.
find "$XDG_CACHE_HOME/kiln" -type f | sed "s|$work|\$WORK|"

# kiln validate against Harbor's trials, one task.
mkdir -p "$work/kiln" "$work/harbor"
cp -a "$examples/hello-user" "$work/kiln/"
cp -a "$examples/hello-user" "$work/harbor/"
sed -i "s|^FROM ubuntu:24.04|FROM $base|" "$work/harbor/hello-user/environment/Dockerfile"
printf 'agents:\n  - name: oracle\n  - name: nop\ntasks:\n  - path: %s\n' \
  "$work/harbor/hello-user" > "$work/both.yaml"
"$kiln" -C "$work/kiln" validate --base-map "$work/bases.map" # builds the image
jobs="$work/jobs"
hrun="$harbor run -o $jobs -q -y"
hyperfine --warmup 1 --runs "$harbor_runs" --export-markdown "$work/table.md" \
  --prepare true --prepare "rm -f $work/kiln/.kiln/validation.json" --prepare true --prepare true \
  -n "kiln validate --force" \
  "$kiln -C $work/kiln validate --base-map $work/bases.map --force" \
  -n "kiln validate (image up to date, no recorded verdict)" \
  "$kiln -C $work/kiln validate --base-map $work/bases.map" \
  -n "harbor run -a oracle; harbor run -a nop" \
  "$hrun -p $work/harbor/hello-user -a oracle >/dev/null && $hrun -p $work/harbor/hello-user -a nop >/dev/null" \
  -n "harbor run: one job, agents oracle and nop" \
  "$hrun -c $work/both.yaml >/dev/null"
table
# Every Harbor trial of the runs above passed as expected (oracle 1, nop 0).
grep -rhoE '"reward": [0-9.]+' "$jobs"/*/*/result.json 2>/dev/null | sort | uniq -c || true

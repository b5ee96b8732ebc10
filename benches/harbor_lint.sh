#!/usr/bin/env bash
# `kiln lint` against `harbor lint --select ALL` (Harbor 0.26.0) on the same Harbor tasks,
# in one hyperfine run each: Harbor's 30 example tasks (60 task.toml), then a dataset of
# COPIES copies of them under distinct folder and task names (60 × COPIES tasks) made in
# a temporary directory.
#
#   benches/harbor_lint.sh KILN HARBOR EXAMPLES [COPIES] [RUNS] [BIG_RUNS]
#
# RUNS (default 10) runs after 2 warm-ups on the examples; BIG_RUNS (default 3) after one
# warm-up on the copies, where one `harbor lint` takes minutes.
# KILN: a release build (target/release/kiln). HARBOR: the `harbor` of a venv with
# harbor==0.26.0. EXAMPLES: ../shared/fleets/harbor/examples/tasks. `harbor lint` takes
# task folders, so it gets every folder holding a task.toml (one argument each); kiln
# takes the dataset (`-C`) and finds them itself. Harbor's command line is built by a
# `bash -c` (a few ms on seconds); kiln's runs directly (-N).
set -euo pipefail
kiln=$(realpath "$1"); harbor=$(realpath -s "$2"); examples=$(realpath "$3")
copies=${4:-59}; runs=${5:-10}; big_runs=${6:-3}
work=$(mktemp -d /tmp/kiln-harbor-lint.XXXXXX)
trap 'rm -rf "$work"' EXIT

tasks_of() { (cd "$1" && find . -name task.toml -printf '%h\n' | sort); }

# The dataset: each copy's folder names and [task].name values made distinct.
big="$work/dataset"
mkdir -p "$big"
for i in $(seq -w 1 "$copies"); do
  cp -a "$examples" "$big/copy-$i"
  # Only [task].name: a step's name is its folder's.
  find "$big/copy-$i" -name task.toml -exec \
    sed -i -E "/^\[task\]/,/^\[/ s|^(name = \"[^\"]+)\"|\\1-$i\"|" {} +
done
echo "dataset: $(tasks_of "$big" | wc -l) tasks in $big"

for set in "$examples" "$big"; do
  if [ "$set" = "$big" ]; then warmup=1 n=$big_runs; else warmup=2 n=$runs; fi
  cd "$set"
  tasks_of . > "$work/dirs"
  export KILN="$kiln" HARBOR="$harbor" DIRS="$work/dirs"
  # The table goes to a file first: --export-markdown /dev/stdout would truncate a
  # redirected stdout.
  hyperfine --warmup "$warmup" --runs "$n" -i -N --export-markdown "$work/table.md" \
    -n "kiln lint ($(wc -l < "$work/dirs") tasks)" "$kiln -C $set lint" \
    -n "harbor lint --select ALL ($(wc -l < "$work/dirs") tasks)" \
    "bash -c '\$HARBOR lint --select ALL \$(cat \$DIRS) >/dev/null'"
  cat "$work/table.md"
done

#!/usr/bin/env bash
# Run throughput and per-run cost of `kiln run`, each beside the plain Docker commands
# that do the same work, in the same invocation (figures are only comparable within one).
#
#   1. Throughput: 50 short runs (terminal-lite/count-lines × null and oracle, 25 repeats
#      each) with `kiln run … --jobs J` against a shell loop (`xargs -P J`) of the plain
#      commands on the same eval images, for J = 1, 2, 4: runs per minute, and the
#      per-run overhead (kiln's wall time minus the loop's, per run, at J = 1).
#      Plain commands: null `docker run --rm`; oracle `docker create` + `docker cp` of the
#      solution + `docker start -a` + `docker rm` (RULES.md's by-hand equivalent).
#   2. One run (hyperfine): `kiln run --no-build` vs the plain commands, and `kiln run`
#      with its up-to-date check.
#
# Needs: the eval images built (`kiln run terminal-lite --task-id count-lines --agent null
# --agent oracle` once), hyperfine, and a release build (cargo build --release -p kiln).
# Env: KILN (binary), RUNS (hyperfine runs, default 10), JOBS (default "1 2 4"), N (50).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
repo=$(readlink -f "$here/..")
kiln=${KILN:-$repo/target/release/kiln}
runs=${RUNS:-10}
n=${N:-50}
task=count-lines
registry=${REGISTRY:-kiln.local}
tag=${TAG:-dev}
null_image=$registry/evals/terminal-lite-$task--null:$tag
oracle_image=$registry/evals/terminal-lite-$task--oracle:$tag
solution=$repo/benchmarks/terminal-lite/tasks/$task/solution
work=$(mktemp -d /tmp/kiln-bench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$repo"

for image in "$null_image" "$oracle_image"; do
  docker image inspect "$image" >/dev/null 2>&1 || {
    echo "missing $image: run kiln run terminal-lite --task-id $task --agent null --agent oracle first" >&2
    exit 1
  }
done

# The plain commands of one run (what kiln does, without kiln). /kiln/solutions does not
# exist in the image, so the copy brings the solutions/ directory into /kiln.
mkdir -p "$work/kiln/solutions"
cp -a "$solution" "$work/kiln/solutions/$task"
cat > "$work/plain.sh" <<EOF
#!/bin/sh
set -e
case "\$1" in
  null)
    docker run --rm -e KILN_TASK_ID=$task -e KILN_AGENT_ID=null $null_image all --task $task >/dev/null 2>&1 ;;
  oracle)
    id=\$(docker create -e KILN_TASK_ID=$task -e KILN_AGENT_ID=oracle $oracle_image all --task $task)
    trap 'docker rm -f "\$id" >/dev/null' EXIT
    docker cp $work/kiln/solutions "\$id:/kiln/"
    docker start -a "\$id" >/dev/null 2>&1 ;;
esac
EOF
chmod +x "$work/plain.sh"
half=$((n / 2))
{ for _ in $(seq "$half"); do echo null; echo oracle; done; } > "$work/list"

now() { date +%s.%N; }
echo "# machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(docker version --format 'Docker {{.Server.Version}}'); $(date -u +%FT%TZ)"
echo "# $n runs (terminal-lite/$task × null, oracle; $half repeats each); shared machine: figures are noisy"
printf '%-5s %14s %14s %10s %12s\n' jobs "loop runs/min" "kiln runs/min" "kiln/loop" "overhead/run"
for j in ${JOBS:-1 2 4}; do
  t0=$(now)
  xargs -P "$j" -n 1 "$work/plain.sh" < "$work/list"
  t1=$(now)
  "$kiln" run terminal-lite --task-id "$task" --agent null --agent oracle --repeat "$half" \
    --jobs "$j" --no-build --force --progress quiet --output "$work/results" >/dev/null 2>&1
  t2=$(now)
  awk -v n="$n" -v j="$j" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    loop = b - a; k = c - b;
    printf "%-5s %14.1f %14.1f %10.2f %10.0f ms\n", j, 60 * n / loop, 60 * n / k, loop / k, 1000 * j * (k - loop) / n }'
done
echo "# overhead/run = (kiln wall - loop wall) × jobs / runs: what one run costs kiln beyond the plain commands"

echo
echo "# one run: kiln run --no-build vs the plain commands, and kiln run with its up-to-date check"
hyperfine -N -w 2 -r "$runs" --output=pipe \
  -n "docker run (null)" "$work/plain.sh null" \
  -n "kiln run --no-build (null)" "$kiln run terminal-lite --task-id $task --agent null --no-build --force -q -o $work/one" \
  -n "create+cp+start (oracle)" "$work/plain.sh oracle" \
  -n "kiln run --no-build (oracle)" "$kiln run terminal-lite --task-id $task --agent oracle --no-build --force -q -o $work/one" \
  -n "kiln run (oracle, up-to-date check)" "$kiln run terminal-lite --task-id $task --agent oracle --force -q --backend engine -o $work/one"

#!/usr/bin/env bash
# Generates a synthetic fleet for timing `kiln build all --dry-run`:
#   gen_fleet.sh DIR BENCHMARKS AGENTS PER_TASK_TASKS
# DIR gets the core images, BENCHMARKS shared-env benchmarks (2 tasks each), AGENTS agents
# and one per-task benchmark with PER_TASK_TASKS tasks, laid out as RULES.md says.
# Example (the issue's fleet): benches/gen_fleet.sh /tmp/fleet 100 20 2000
set -euo pipefail
dir=$1; nb=$2; na=$3; nt=$4
here=$(dirname "$(readlink -f "$0")")
rm -rf "$dir"; mkdir -p "$dir"
cd "$dir"

bench_list=""; agent_list=""
for i in $(seq -f '%04g' 1 "$nb"); do bench_list+="\"benchmark-b$i\", "; done
for i in $(seq -f '%03g' 1 "$na"); do agent_list+="\"agent-a$i\", "; done
cat > docker-bake.hcl <<HCL
variable "REGISTRY" {
  default = "kiln.local"
}
variable "TAG" {
  default = "dev"
}
variable "EVAL_TASK_ID" {
  default = ""
}
group "default" {
  targets = ["core", "benchmarks", "agents"]
}
group "core" {
  targets = ["core-base", "core-runner"]
}
group "benchmarks" {
  targets = [${bench_list%, }]
}
group "agents" {
  targets = [${agent_list%, }]
}
HCL

mkdir -p containers/core/base containers/core/runner containers/core/eval
cat > containers/core/base/docker-bake.hcl <<'HCL'
target "core-base" {
  context = "containers/core/base"
  tags    = ["${REGISTRY}/core/base:${TAG}"]
  labels = {
    "eval.type"                            = "core"
    "org.opencontainers.image.title"       = "core/base"
    "org.opencontainers.image.description" = "base"
  }
}
HCL
echo 'FROM debian:bookworm-slim' > containers/core/base/Dockerfile
cat > containers/core/runner/docker-bake.hcl <<'HCL'
target "core-runner" {
  context  = "containers/core/runner"
  contexts = { "${REGISTRY}/core/base:${TAG}" = "target:core-base" }
  args     = { BASE_IMAGE = "${REGISTRY}/core/base:${TAG}" }
  tags     = ["${REGISTRY}/core/runner:${TAG}"]
  labels = {
    "eval.type"                            = "core"
    "org.opencontainers.image.title"       = "core/runner"
    "org.opencontainers.image.description" = "runner"
  }
}
HCL
printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY bin/ /opt/kiln/\n' > containers/core/runner/Dockerfile
cp "$here/../containers/core/eval/docker-bake.hcl" containers/core/eval/docker-bake.hcl
printf 'ARG BENCHMARK_IMAGE\nARG AGENT_IMAGE\nARG RUNNER_IMAGE\nFROM ${AGENT_IMAGE} AS agent\nFROM ${RUNNER_IMAGE} AS runner\nFROM ${BENCHMARK_IMAGE}\nCOPY --from=agent /opt/agent/ /opt/agent/\nCOPY --from=runner /opt/kiln/runner /opt/kiln/runner\n' > containers/core/eval/Dockerfile

for i in $(seq -f '%03g' 1 "$na"); do
  d=containers/agents/a$i; mkdir -p $d
  cat > $d/docker-bake.hcl <<HCL
target "agent-a$i" {
  context  = "$d"
  contexts = { "\${REGISTRY}/core/base:\${TAG}" = "target:core-base" }
  args     = { BASE_IMAGE = "\${REGISTRY}/core/base:\${TAG}" }
  tags     = ["\${REGISTRY}/agents/a$i:\${TAG}"]
  labels = {
    "eval.type"                            = "agent"
    "eval.agent.name"                      = "a$i"
    "eval.agent.version"                   = "1.0.$i"
    "org.opencontainers.image.title"       = "agents/a$i"
    "org.opencontainers.image.description" = "agent a$i"
  }
}
HCL
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY agent/ /opt/agent/\n' > $d/Dockerfile
done

bench() { # name env ntasks context dockerfile extra
  local name=$1 env=$2 n=$3
  local d=benchmarks/$name; mkdir -p $d
  if [ "$env" = per-task ]; then
    ctx="benchmarks/$name/tasks/\${EVAL_TASK_ID}"; df='  dockerfile = "environment/Dockerfile"'
    tag="EVAL_TASK_ID == \"\" ? \"\${REGISTRY}/benchmarks/$name:\${TAG}\" : \"\${REGISTRY}/benchmarks/$name-\${lower(EVAL_TASK_ID)}:\${TAG}\""
    typ='EVAL_TASK_ID == "" ? "benchmark" : "task"'
  else
    ctx="benchmarks/$name"; df=""; tag="\"\${REGISTRY}/benchmarks/$name:\${TAG}\""; typ='"benchmark"'
    printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY tasks/ /opt/benchmark/tasks/\n' > $d/Dockerfile
  fi
  cat > $d/docker-bake.hcl <<HCL
target "benchmark-$name" {
  context  = "$ctx"
$df
  contexts = { "\${REGISTRY}/core/base:\${TAG}" = "target:core-base" }
  args     = { BASE_IMAGE = "\${REGISTRY}/core/base:\${TAG}" }
  tags     = [$tag]
  labels = {
    "eval.type"                            = $typ
    "eval.benchmark.name"                  = "$name"
    "eval.benchmark.description"           = "synthetic benchmark $name"
    "eval.benchmark.env"                   = "$env"
    "eval.benchmark.tasks"                 = "$n"
    "eval.benchmark.data_revision"         = "2026-11-01"
    "org.opencontainers.image.title"       = "benchmarks/$name"
    "org.opencontainers.image.description" = "synthetic benchmark $name"
  }
}
HCL
}
for i in $(seq -f '%04g' 1 "$nb"); do
  bench b$i shared-env 2
  mkdir -p benchmarks/b$i/tasks/t1 benchmarks/b$i/tasks/t2
done
bench per-task-big per-task "$nt"
for i in $(seq -f '%05g' 1 "$nt"); do
  mkdir -p benchmarks/per-task-big/tasks/Task.$i/environment
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TASK_ID\nCOPY environment/ /task/\n' > benchmarks/per-task-big/tasks/Task.$i/environment/Dockerfile
done
echo "generated $dir: $nb shared-env benchmarks + 1 per-task benchmark with $nt tasks, $na agents"

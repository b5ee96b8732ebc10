#!/usr/bin/env python3
"""Writes a synthetic eval repository of bake files for `kiln bake --print` timing.

Shape (issue 2, "Speed"): a root docker-bake.hcl with REGISTRY/TAG/EVAL_TASK_ID and
groups; 4 core base files; N benchmark files whose targets link their base through
`contexts = { "${REGISTRY}/core/<base>" = "target:<base>" }` (every third has a
secret, every other one extra args, every fifth is per-task via EVAL_TASK_ID); 20 agent
files sharing an `_agent` parent; and a combination file with an `eval` target whose args
and tags come from variables and an `eval-local` target inheriting it with `target:`
contexts keyed by variables.

usage: gen_fleet.py OUT_DIR N   (prints the -f arguments, one line)
"""
import os
import sys

CORES = ["base", "python", "node", "runner"]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    files = ["docker-bake.hcl"]
    benches = [f"bench{i:04d}" for i in range(n)]
    agents = [f"agent{j:02d}" for j in range(20)]
    write(os.path.join(out, "docker-bake.hcl"), f'''variable "REGISTRY" {{
  default = "kiln.local"
}}

variable "TAG" {{
  default = "dev"
}}

variable "EVAL_TASK_ID" {{
  default = ""
}}

group "default" {{
  targets = ["benchmarks", "agents"]
}}

group "core" {{
  targets = [{", ".join(f'"core-{c}"' for c in CORES)}]
}}

group "benchmarks" {{
  targets = [{", ".join(f'"benchmark-{b}"' for b in benches)}]
}}

group "agents" {{
  targets = [{", ".join(f'"agent-{a}"' for a in agents)}]
}}
''')
    for c in CORES:
        base = "" if c == "base" else f'''
  contexts = {{
    "${{REGISTRY}}/core/base" = "target:core-base"
  }}
  args = {{
    BASE_IMAGE = "${{REGISTRY}}/core/base:${{TAG}}"
  }}'''
        p = f"containers/core/{c}/docker-bake.hcl"
        write(os.path.join(out, p), f'''target "core-{c}" {{
  context = "containers/core/{c}"{base}
  tags    = ["${{REGISTRY}}/core/{c}:${{TAG}}"]
  labels = {{
    "eval.type"                      = "core"
    "org.opencontainers.image.title" = "core-{c}"
  }}
}}
''')
        files.append(p)
    for i, b in enumerate(benches):
        core = CORES[i % 3]
        extra = []
        if i % 3 == 0:
            extra.append('  secret = ["id=hf_token,env=HF_TOKEN"]')
        per_task = i % 5 == 0
        args = [f'    BASE_IMAGE = "${{REGISTRY}}/core/{core}:${{TAG}}"']
        if i % 2 == 0:
            args.append(f'    DATASET    = "{b}-v{i % 7}"')
            args.append('    SPLIT      = "test"')
        if per_task:
            args.append('    TASK_ID    = EVAL_TASK_ID')
        tag = (f'"${{REGISTRY}}/benchmarks/{b}${{EVAL_TASK_ID == "" ? "" : "-${{lower(EVAL_TASK_ID)}}"}}:${{TAG}}"'
               if per_task else f'"${{REGISTRY}}/benchmarks/{b}:${{TAG}}"')
        p = f"benchmarks/{b}/docker-bake.hcl"
        write(os.path.join(out, p), f'''target "benchmark-{b}" {{
  context = "benchmarks/{b}"
  contexts = {{
    "${{REGISTRY}}/core/{core}" = "target:core-{core}"
  }}
  args = {{
{chr(10).join(args)}
  }}
  labels = {{
    "eval.type"             = "{"task" if per_task else "benchmark"}"
    "eval.benchmark.name"   = "{b}"
    "eval.benchmark.env"    = "{"per-task" if per_task else "shared-env"}"
  }}
  tags = [{tag}]
{chr(10).join(extra)}
}}
''')
        files.append(p)
    agent_parent = '''target "_agent" {
  contexts = {
    "${REGISTRY}/core/python" = "target:core-python"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/python:${TAG}"
  }
  labels = {
    "eval.type" = "agent"
  }
}
'''
    for j, a in enumerate(agents):
        p = f"containers/agents/{a}/docker-bake.hcl"
        write(os.path.join(out, p), (agent_parent if j == 0 else "") + f'''
target "agent-{a}" {{
  inherits = ["_agent"]
  context  = "containers/agents/{a}"
  args = {{
    AGENT_VERSION = "1.{j}.0"
  }}
  labels = {{
    "eval.agent.name"    = "{a}"
    "eval.agent.version" = "1.{j}.0"
  }}
  tags = ["${{REGISTRY}}/agents/{a}:${{TAG}}"]
}}
''')
        files.append(p)
    p = "containers/core/eval/docker-bake.hcl"
    write(os.path.join(out, p), f'''variable "EVAL_BENCHMARK" {{
  default = "{benches[0]}"
}}

variable "EVAL_AGENT" {{
  default = "{agents[0]}"
}}

variable "BENCHMARK_IMAGE" {{
  default = "${{REGISTRY}}/benchmarks/${{EVAL_BENCHMARK}}:${{TAG}}"
}}

variable "AGENT_IMAGE" {{
  default = "${{REGISTRY}}/agents/${{EVAL_AGENT}}:${{TAG}}"
}}

target "eval" {{
  context = "containers/core/eval"
  args = {{
    BENCHMARK_IMAGE = BENCHMARK_IMAGE
    AGENT_IMAGE     = AGENT_IMAGE
    RUNNER_IMAGE    = "${{REGISTRY}}/core/runner:${{TAG}}"
  }}
  labels = {{
    "eval.type" = "eval"
  }}
  tags = ["${{REGISTRY}}/evals/${{EVAL_BENCHMARK}}--${{EVAL_AGENT}}:${{TAG}}"]
}}

target "eval-local" {{
  inherits = ["eval"]
  contexts = {{
    (BENCHMARK_IMAGE)                = "target:benchmark-${{EVAL_BENCHMARK}}"
    (AGENT_IMAGE)                    = "target:agent-${{EVAL_AGENT}}"
    "${{REGISTRY}}/core/runner:${{TAG}}" = "target:core-runner"
  }}
}}
''')
    files.append(p)
    print(" ".join(f"-f {f}" for f in files))


if __name__ == "__main__":
    main()

# Fleet-wide variables and groups. Every docker-bake.hcl under containers/ and
# benchmarks/ is read together with this file (root first, then the others in
# path order); `context` paths are relative to the repository root.
# See RULES.md for the conventions kiln lint checks.

variable "REGISTRY" {
  default = "kiln.local"
}

variable "TAG" {
  default = "dev"
}

# Set to a task id to build a per-task benchmark's base image for that task.
variable "EVAL_TASK_ID" {
  default = ""
}

group "default" {
  targets = ["core", "benchmarks", "agents"]
}

group "core" {
  targets = ["core-base", "core-runner"]
}

# Shared-env benchmarks only: a per-task benchmark needs EVAL_TASK_ID set.
group "benchmarks" {
  targets = ["benchmark-metric-definition-audit", "benchmark-metric-backfill"]
}

group "agents" {
  targets = ["agent-oracle", "agent-null", "agent-mini-swe-agent"]
}

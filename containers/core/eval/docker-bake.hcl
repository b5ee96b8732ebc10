# The combination recipe: benchmark (or per-task base) image + agent files + runner.
# kiln sets EVAL_BENCHMARK, EVAL_AGENT and, for per-task benchmarks, EVAL_TASK_ID.

variable "EVAL_BENCHMARK" {
  default = ""
}

variable "EVAL_AGENT" {
  default = ""
}

variable "EVAL_BENCHMARK_IMAGE" {
  default = EVAL_TASK_ID == "" ? "${REGISTRY}/benchmarks/${EVAL_BENCHMARK}:${TAG}" : "${REGISTRY}/benchmarks/${EVAL_BENCHMARK}-${lower(EVAL_TASK_ID)}:${TAG}"
}

variable "EVAL_AGENT_IMAGE" {
  default = "${REGISTRY}/agents/${EVAL_AGENT}:${TAG}"
}

variable "EVAL_RUNNER_IMAGE" {
  default = "${REGISTRY}/core/runner:${TAG}"
}

target "core-eval" {
  context = "containers/core/eval"
  contexts = {
    (EVAL_BENCHMARK_IMAGE) = "target:benchmark-${EVAL_BENCHMARK}"
    (EVAL_AGENT_IMAGE)     = "target:agent-${EVAL_AGENT}"
    (EVAL_RUNNER_IMAGE)    = "target:core-runner"
  }
  args = {
    BENCHMARK_IMAGE = EVAL_BENCHMARK_IMAGE
    AGENT_IMAGE     = EVAL_AGENT_IMAGE
    RUNNER_IMAGE    = EVAL_RUNNER_IMAGE
  }
  tags = [EVAL_TASK_ID == "" ? "${REGISTRY}/evals/${EVAL_BENCHMARK}--${EVAL_AGENT}:${TAG}" : "${REGISTRY}/evals/${EVAL_BENCHMARK}-${lower(EVAL_TASK_ID)}--${EVAL_AGENT}:${TAG}"]
  labels = {
    "eval.type" = "eval"
  }
}

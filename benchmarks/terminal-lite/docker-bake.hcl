# A per-task benchmark: each task has its own environment Dockerfile and base image.
# Build one task's base with EVAL_TASK_ID=<task id> (kiln does this for you).
target "benchmark-terminal-lite" {
  context    = "benchmarks/terminal-lite/tasks/${EVAL_TASK_ID}"
  dockerfile = "environment/Dockerfile"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
    TASK_ID    = EVAL_TASK_ID
  }
  tags = [EVAL_TASK_ID == "" ? "${REGISTRY}/benchmarks/terminal-lite:${TAG}" : "${REGISTRY}/benchmarks/terminal-lite-${lower(EVAL_TASK_ID)}:${TAG}"]
  labels = {
    "eval.type"                            = EVAL_TASK_ID == "" ? "benchmark" : "task"
    "eval.task.id"                         = EVAL_TASK_ID
    "eval.benchmark.name"                  = "terminal-lite"
    "eval.benchmark.description"           = "Small terminal tasks, each in its own environment (reward tests)"
    "eval.benchmark.env"                   = "per-task"
    "eval.benchmark.tasks"                 = "3"
    "eval.benchmark.data_revision"         = "2026-11-01"
    "eval.benchmark.released"              = "true"
    "org.opencontainers.image.title"       = "benchmarks/terminal-lite"
    "org.opencontainers.image.description" = "Small terminal tasks, each in its own environment (reward tests)"
  }
}

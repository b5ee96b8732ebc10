target "benchmark-metric-definition-audit" {
  context = "benchmarks/metric-definition-audit"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
  }
  tags = ["${REGISTRY}/benchmarks/metric-definition-audit:${TAG}"]
  labels = {
    "eval.type"                            = "benchmark"
    "eval.benchmark.name"                  = "metric-definition-audit"
    "eval.benchmark.description"           = "Audit metric definitions against a dashboard export (weighted checks)"
    "eval.benchmark.env"                   = "shared-env"
    "eval.benchmark.tasks"                 = "2"
    "eval.benchmark.data_revision"         = "2026-11-01"
    "eval.benchmark.released"              = "true"
    "org.opencontainers.image.title"       = "benchmarks/metric-definition-audit"
    "org.opencontainers.image.description" = "Audit metric definitions against a dashboard export (weighted checks)"
  }
}

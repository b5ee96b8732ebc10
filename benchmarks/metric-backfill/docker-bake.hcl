target "benchmark-metric-backfill" {
  context = "benchmarks/metric-backfill"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
  }
  tags = ["${REGISTRY}/benchmarks/metric-backfill:${TAG}"]
  labels = {
    "eval.type"                            = "benchmark"
    "eval.benchmark.name"                  = "metric-backfill"
    "eval.benchmark.description"           = "Repair a half-run PostgreSQL backfill with duplicates and gaps (gated)"
    "eval.benchmark.env"                   = "shared-env"
    "eval.benchmark.tasks"                 = "2"
    "eval.benchmark.data_revision"         = "2026-11-01"
    "eval.benchmark.released"              = "true"
    "org.opencontainers.image.title"       = "benchmarks/metric-backfill"
    "org.opencontainers.image.description" = "Repair a half-run PostgreSQL backfill with duplicates and gaps (gated)"
  }
}

target "core-base" {
  context = "containers/core/base"
  tags    = ["${REGISTRY}/core/base:${TAG}"]
  labels = {
    "eval.type"                            = "core"
    "org.opencontainers.image.title"       = "core/base"
    "org.opencontainers.image.description" = "Debian bookworm base that every fleet image starts from"
  }
}

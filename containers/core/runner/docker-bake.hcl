target "core-runner" {
  context = "containers/core/runner"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
  }
  tags = ["${REGISTRY}/core/runner:${TAG}"]
  labels = {
    "eval.type"                            = "core"
    "org.opencontainers.image.title"       = "core/runner"
    "org.opencontainers.image.description" = "Holds the static kiln scenario runner at /opt/kiln/runner"
  }
}

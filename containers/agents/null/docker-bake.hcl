target "agent-null" {
  context = "containers/agents/null"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
  }
  tags = ["${REGISTRY}/agents/null:${TAG}"]
  labels = {
    "eval.type"                            = "agent"
    "eval.agent.name"                      = "null"
    "eval.agent.version"                   = "0.1.0"
    "org.opencontainers.image.title"       = "agents/null"
    "org.opencontainers.image.description" = "Does nothing (the floor every benchmark must not pass)"
  }
}

target "agent-oracle" {
  context = "containers/agents/oracle"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE = "${REGISTRY}/core/base:${TAG}"
  }
  tags = ["${REGISTRY}/agents/oracle:${TAG}"]
  labels = {
    "eval.type"                            = "agent"
    "eval.agent.name"                      = "oracle"
    "eval.agent.version"                   = "0.1.0"
    "org.opencontainers.image.title"       = "agents/oracle"
    "org.opencontainers.image.description" = "Runs the task's reference solution"
  }
}

target "agent-mini-swe-agent" {
  context = "containers/agents/mini-swe-agent"
  contexts = {
    "${REGISTRY}/core/base:${TAG}" = "target:core-base"
  }
  args = {
    BASE_IMAGE             = "${REGISTRY}/core/base:${TAG}"
    MINI_SWE_AGENT_VERSION = "2.4.6"
  }
  tags = ["${REGISTRY}/agents/mini-swe-agent:${TAG}"]
  labels = {
    "eval.type"                            = "agent"
    "eval.agent.name"                      = "mini-swe-agent"
    "eval.agent.version"                   = "2.4.6"
    "org.opencontainers.image.title"       = "agents/mini-swe-agent"
    "org.opencontainers.image.description" = "mini-swe-agent (PyPI) driving an OpenAI-compatible model"
  }
}

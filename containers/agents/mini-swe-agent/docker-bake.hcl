# Built FROM Debian directly, not FROM core/base: this image needs build secrets (the
# CA bundle for PyPI), i.e. bake or podman, and a `target:` context would stop bake on
# Docker 20.10's builder (BuildKit v0.8 has no named contexts). Only /opt/agent/ reaches
# the eval image anyway.
target "agent-mini-swe-agent" {
  context = "containers/agents/mini-swe-agent"
  args = {
    BASE_IMAGE             = "debian:bookworm-slim"
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

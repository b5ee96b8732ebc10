#!/usr/bin/env python3
"""Turns a model script (you playing the model) into a fixture that a lenient gateway
serves as the upstream of a recording (docs/model-gateway.md, "Making fixtures").

A script is JSON: {"model": M, "turns": [{"thought": "...", "command": "..."}, ...]}.
Each turn becomes one chat completion answering with one `bash` tool call; the
requests are placeholders (the lenient gateway serves them in order whatever comes).
Usage: scripts/model-script.py SCRIPT.json OUT.jsonl
"""
import json
import sys

script = json.load(open(sys.argv[1]))
model = script["model"]
lines = [{"kind": "kiln-model-fixture", "version": 1, "model": model, "source": "script " + sys.argv[1]}]
for i, turn in enumerate(script["turns"], 1):
    call = {"id": f"call_{i}", "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"command": turn["command"]})}}
    lines.append({
        "route": "POST /v1/chat/completions",
        "request": {"model": model, "messages": []},
        "status": 200,
        "response": {
            "id": f"chatcmpl-script-{i}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": turn.get("thought", ""), "tool_calls": [call]}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        },
    })
with open(sys.argv[2], "w") as out:
    for line in lines:
        out.write(json.dumps(line) + "\n")

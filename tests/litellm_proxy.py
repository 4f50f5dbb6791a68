"""A real LiteLLM proxy (the ``litellm`` extra) on a free loopback port, for gateway tests.

    with LiteLLMProxy(proxy_config([mock_model("claude-sonnet-4")])) as proxy:
        httpx.get(f"{proxy.url}/health/liveliness")

It runs offline: models answer with LiteLLM's own mocks (``mock_response``, ``mock_delay``),
the cost map is the packaged one (``LITELLM_LOCAL_MODEL_COST_MAP``; otherwise it first tries
to download it and waits), and there is no database, so only :data:`MASTER_KEY` is accepted.
Startup takes 8-13 s on an idle machine: reuse one proxy per config.

:class:`CutStream` is a loopback upstream that streams one chunk and drops the connection,
because LiteLLM's ``mock_response: "Exception: mock_streaming_error"`` raises before the first
chunk, which the proxy turns into an error status, not into a failure inside the stream.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.daemons import Daemon

__all__ = [
    "LITELLM",
    "MASTER_KEY",
    "CutStream",
    "LiteLLMProxy",
    "mock_model",
    "proxy_config",
    "require_litellm",
]

LITELLM = Path(sys.executable).with_name("litellm")
MASTER_KEY = "sk-slo-test-master-4f1c9a"


def require_litellm() -> None:
    """Skip, naming the missing extra, where LiteLLM is not installed (``make setup`` installs it)."""
    if not LITELLM.exists():
        pytest.skip("the litellm extra is not installed (pip install -e '.[litellm]', or make setup)")


def mock_model(
    name: str,
    provider_model: str = "openai/gpt-4o-mini",
    *,
    mock_response: str | None = "pong",
    **params: Any,
) -> dict[str, Any]:
    """One deployment of model group ``name``; it answers ``mock_response`` (None: really calls
    its ``api_base``), and ``params`` are more of its ``litellm_params``."""
    litellm_params = {"model": provider_model, "api_key": "sk-mock-upstream", **params}
    if mock_response is not None:
        litellm_params["mock_response"] = mock_response
    return {"model_name": name, "litellm_params": litellm_params}


def proxy_config(
    models: Sequence[Mapping[str, Any]], *, router: Mapping[str, Any] | None = None, metrics_auth: bool = True
) -> dict[str, Any]:
    """A proxy config: these deployments, the master key, Prometheus metrics on ``/metrics``."""
    return {
        "model_list": list(models),
        "router_settings": {"num_retries": 0, **(router or {})},
        "litellm_settings": {
            "callbacks": ["prometheus"],
            "require_auth_for_metrics_endpoint": metrics_auth,
        },
        "general_settings": {"master_key": MASTER_KEY},
    }


class LiteLLMProxy(Daemon):
    binary = str(LITELLM)
    ready_path = "/health/liveliness"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        startup_timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.config = config
        #: More environment for the proxy (LiteLLM reads some settings only from there).
        self.env = dict(env or {})

    def prepare(self, workdir: Path) -> None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(dict(self.config)), encoding="utf-8")

    def arguments(self, port: int, workdir: Path) -> list[str]:
        return ["--config", str(workdir / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)]

    def environment(self) -> Mapping[str, str]:
        return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", **self.env}


class CutStream(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream whose completion stream breaks after its first chunk."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        chunk = {
            "id": "chatcmpl-cut",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body.get("model", "cut"),
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "po"}, "finish_reason": None}],
        }
        event = f"data: {json.dumps(chunk)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()
        # No terminating chunk: the connection just ends, as when an upstream dies mid-answer.
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

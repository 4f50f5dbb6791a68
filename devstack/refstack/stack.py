"""Both services in one process: build them around one deployment, serve, stop cleanly."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from random import Random
from types import TracebackType

from devstack.refstack.api import ApiService
from devstack.refstack.deployment import DEFAULT_MODELS, Deployment
from devstack.refstack.faults import Faults
from devstack.refstack.gateway import GatewayService
from devstack.refstack.server import Service, StackServer
from devstack.refstack.telemetry import ApiMetrics, GatewayMetrics


@dataclass(frozen=True)
class StackOptions:
    """How to run the stack. Port 0 picks a free port.

    >>> options = StackOptions(api_port=0, gateway_port=0, api_faults=Faults(latency_ms=100))
    """

    host: str = "127.0.0.1"
    api_port: int = 8080
    gateway_port: int = 4000
    api_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    api_faults: Faults = field(default_factory=Faults)
    gateway_faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    verbose: bool = False


def _url(server: StackServer) -> str:
    host, port = server.server_address[:2]
    host = str(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmbeddedStack:
    """The API service and the gateway listening in this process, one serving thread each.

    Binding happens in the constructor, so a busy port fails there with ``OSError`` before
    anything is announced.
    """

    def __init__(self, options: StackOptions) -> None:
        self.deployment = Deployment(options.models, ApiMetrics(), GatewayMetrics())
        self.services: dict[str, Service] = {
            "api": ApiService(self.deployment, options.api_faults, rng=Random(options.seed)),
            "gateway": GatewayService(self.deployment, options.gateway_faults, rng=Random(options.seed)),
        }
        ports = {"api": options.api_port, "gateway": options.gateway_port}
        self.servers: dict[str, StackServer] = {}
        for name, service in self.services.items():
            try:
                self.servers[name] = StackServer(
                    (options.host, ports[name]),
                    service,
                    api_key=options.api_key,
                    verbose=options.verbose,
                )
            except OSError as exc:
                self._close()
                # The socket's own message does not say which port was busy.
                raise OSError(
                    exc.errno, f"port {ports[name]} ({name}, --{name}-port): {exc.strerror}"
                ) from None
        self._threads: list[threading.Thread] = []

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each service, by service name (``api``, ``gateway``)."""
        return {name: _url(server) for name, server in self.servers.items()}

    def start(self) -> EmbeddedStack:
        """Serve both services from background threads."""
        for name, server in self.servers.items():
            # A short poll interval: shutdown() waits for the loop to notice, and the default
            # half second per service would make every test's teardown visibly slower.
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"refstack-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Release waiting requests, stop accepting, close the listeners."""
        for service in self.services.values():
            service.faults.stop()
        if self._threads:
            for server in self.servers.values():
                server.shutdown()
        self._close()

    def _close(self) -> None:
        for server in self.servers.values():
            server.server_close()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""Run the reference stack as a subprocess: for tests, ``make demo`` and the load gate.

A subprocess, not threads in the caller: the load gate runs Locust (which monkey-patches the
process with gevent) and tests must exercise the real command line, signals included.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Never

import httpx

import slo
from slo import processes

ServiceName = Literal["api", "gateway"]

# The directory holding the `slo` package, so `python -m slo` works from any working
# directory even when the project is not installed.
_PACKAGE_ROOT = str(Path(slo.__file__).resolve().parents[1])


class ReferenceStackError(RuntimeError):
    """The stack did not start, or refused a fault update."""


class ReferenceStack:
    """``slo reference-stack`` on free ports for the duration of a ``with`` block.

    >>> with ReferenceStack("--latency-ms", "50") as stack:
    ...     faults = stack.set_faults("gateway", error_rate=1.0, status=502)
    ...     httpx.get(f"{stack.gateway_url}/health/liveliness").status_code
    502

    ``extra_args`` are passed to the command after the port options; ``env`` adds to (not
    replaces) the inherited environment. Leaving the block always ends the process: SIGTERM,
    then SIGKILL if it does not exit within ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        *extra_args: str,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "slo",
            "reference-stack",
            "--api-port",
            "0",
            "--gateway-port",
            "0",
            *extra_args,
        ]
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, str] = {}
        self._stderr: IO[bytes] | None = None
        self._stderr_at_exit = ""

    @property
    def api_url(self) -> str:
        """Base URL of the API service, e.g. ``http://127.0.0.1:43117``."""
        return self.url("api")

    @property
    def gateway_url(self) -> str:
        """Base URL of the LLM gateway."""
        return self.url("gateway")

    def url(self, service: ServiceName) -> str:
        """Base URL of ``service``; raises if the stack is not running."""
        if service not in self.urls:
            raise ReferenceStackError("the reference stack is not running")
        return self.urls[service]

    def start(self) -> ReferenceStack:
        """Start the process and wait for its JSON line of URLs."""
        if self.process is not None:
            raise ReferenceStackError("the reference stack is already running")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        # stderr goes to a file, not a pipe: nobody drains a pipe while the stack runs, and a
        # full pipe would block a --verbose stack mid-request.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        try:
            self.urls = self._read_urls(self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int | None:
        """End the process (SIGTERM, then SIGKILL) and return its exit status."""
        process, self.process = self.process, None
        self.urls = {}
        returncode = None
        if process is not None:
            returncode = processes.stop(process, self.stop_timeout)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            # Kept after the file is gone, for the error report of whoever stopped us.
            self._stderr_at_exit = self.stderr_text()
            self._stderr.close()
            self._stderr = None
        return returncode

    def stderr_text(self) -> str:
        """What the process wrote to stderr (``--verbose`` request logs, errors), so far or
        until it was stopped."""
        if self._stderr is None:
            return self._stderr_at_exit
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def faults(self, service: ServiceName) -> dict[str, Any]:
        """The service's current faults (``GET /_faults``)."""
        return self._faults_call("GET", service)

    def set_faults(self, service: ServiceName, **faults: Any) -> dict[str, Any]:
        """Change some of the service's faults (``PUT /_faults``); returns all of them."""
        return self._faults_call("PUT", service, faults)

    def clear_faults(self, service: ServiceName) -> dict[str, Any]:
        """Make the service healthy again (``DELETE /_faults``); returns its faults."""
        return self._faults_call("DELETE", service)

    def _faults_call(
        self, method: str, service: ServiceName, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        # trust_env=False: the stack is on loopback, and a corporate HTTP_PROXY must not
        # intercept the control calls.
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            response = client.request(method, f"{self.url(service)}/_faults", json=body)
        if response.status_code != 200:
            raise ReferenceStackError(
                f"{service} refused {method} /_faults ({response.status_code}): {response.text}"
            )
        result: dict[str, Any] = response.json()
        return result

    def _read_urls(self, process: subprocess.Popen[bytes]) -> dict[str, str]:
        assert process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail(f"did not start within {self.startup_timeout:g} s")
                if not selector.select(remaining):
                    continue
                data = os.read(process.stdout.fileno(), 4096)
                if not data:
                    process.wait(self.stop_timeout)
                    self._fail(f"exited with status {process.returncode} before announcing URLs")
                received += data
        line = received.split(b"\n", 1)[0]
        try:
            urls = json.loads(line)
            return {"api": str(urls["api"]), "gateway": str(urls["gateway"])}
        except (ValueError, KeyError, TypeError):
            self._fail(f"announced something other than its URLs: {line!r}")

    def _fail(self, reason: str) -> Never:
        stderr = self.stderr_text().strip() or "(nothing on stderr)"
        raise ReferenceStackError(f"reference stack {reason}\ncommand: {self.args}\nstderr:\n{stderr}")

    def __enter__(self) -> ReferenceStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

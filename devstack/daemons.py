"""Run the real Prometheus tools (Debian's binaries) as short-lived loopback daemons.

Tests and the demo need a real Pushgateway and a real Prometheus, not fakes: the Pushgateway's
grouping and consistency checks and Prometheus's rule evaluation are exactly what can go wrong::

    with Pushgateway() as gateway, Prometheus(scrape_targets={"pushgateway": gateway.url}) as prom:
        print(gateway.url, prom.url)   # http://127.0.0.1:40123 http://127.0.0.1:40124

Each daemon listens on 127.0.0.1 on a free port (retried if another process wins the race for
it), is polled on ``/-/ready`` until a startup deadline, and is always stopped on exit
(terminate, wait, kill). A missing binary or a failed start is one :class:`DaemonError` line
that names the Debian package or ends with the binary's own last log lines.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import yaml

from slo import processes
from slo.binaries import BinaryNotFoundError, find_binary
from slo.units import format_duration

__all__ = [
    "Alertmanager",
    "Daemon",
    "DaemonError",
    "Prometheus",
    "Pushgateway",
    "free_port",
]

_LOG_TAIL_LINES = 15
_BIND_RETRIES = 3


class DaemonError(RuntimeError):
    """A daemon could not be found, started or reached; the message is meant for the user."""


def free_port() -> int:
    """A loopback port free right now; the caller must cope with losing it to a race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Daemon(ABC):
    """One binary run as a subprocess on 127.0.0.1; a context manager that always stops it.

    Subclasses say which binary, which arguments for a given port, and where it reports ready.
    """

    binary: str
    ready_path = "/-/ready"

    def __init__(
        self, *, port: int = 0, extra_args: Sequence[str] = (), startup_timeout: float = 30.0
    ) -> None:
        self.requested_port = port
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.port = 0
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- what subclasses provide ---------------------------------------------------------------

    @abstractmethod
    def arguments(self, port: int, workdir: Path) -> list[str]:
        """Command-line arguments (without the binary) to listen on `port`, state in `workdir`."""

    def prepare(self, workdir: Path) -> None:  # noqa: B027 - most daemons need no files
        """Write any files the daemon reads (config) before it starts."""

    def environment(self) -> Mapping[str, str] | None:
        """The daemon's environment variables; None: this process's own."""
        return None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``; only valid while running."""
        if self._process is None:
            raise DaemonError(f"{self.binary} is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def workdir(self) -> Path:
        """The temporary directory holding this daemon's config, data and log."""
        if self._workdir is None:
            raise DaemonError(f"{self.binary} is not running")
        return Path(self._workdir.name)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the daemon wrote to stdout/stderr (for error messages and debugging)."""
        path = self.workdir / "daemon.log"
        if not path.exists():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> Self:
        """Start the daemon and wait until it is ready; raises :class:`DaemonError`."""
        try:
            executable = find_binary(self.binary)
        except BinaryNotFoundError as exc:
            raise DaemonError(str(exc)) from None
        self._workdir = tempfile.TemporaryDirectory(prefix=f"slo-{Path(self.binary).name}-")
        try:
            self.prepare(self.workdir)
            # Only a port we picked may be retried: a port the caller chose is theirs to fix.
            attempts = 1 if self.requested_port else _BIND_RETRIES
            for attempt in range(attempts):
                self.port = self.requested_port or free_port()
                if self._spawn_and_wait(executable, last=attempt == attempts - 1):
                    return self
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _spawn_and_wait(self, executable: str, *, last: bool) -> bool:
        """True when ready; False when it lost a port race and may retry; raises otherwise."""
        self._close_log()
        self._log = (self.workdir / "daemon.log").open("wb")
        command = [executable, *self.arguments(self.port, self.workdir), *self.extra_args]
        # The log goes to a file, not a pipe: a chatty daemon would block on a full pipe.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
        )
        deadline = time.monotonic() + self.startup_timeout
        # trust_env=False: an HTTP(S)_PROXY from the environment must not capture loopback.
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                code = self._process.poll()
                if code is not None:
                    self._process = None
                    tail = self.log_tail()
                    if not last and "address already in use" in tail:
                        return False
                    raise DaemonError(
                        f"{self.binary} exited with code {code} during startup; its last log lines:\n{tail}"
                    )
                try:
                    if client.get(f"{self.url}{self.ready_path}").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise DaemonError(
                        f"{self.binary} not ready on {self.url} within {self.startup_timeout:g}s; "
                        f"its last log lines:\n{tail}"
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate, wait up to `timeout`, then kill; remove the temp dir. Safe to repeat."""
        process, self._process = self._process, None
        if process is not None:
            processes.stop(process, timeout)
        self._close_log()
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            workdir.cleanup()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Pushgateway(Daemon):
    """Debian's ``prometheus-pushgateway``, in memory only (no persistence file)."""

    binary = "prometheus-pushgateway"

    def arguments(self, port: int, workdir: Path) -> list[str]:
        # An empty persistence file keeps pushes in memory: nothing leaks between runs.
        return [f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]


class Prometheus(Daemon):
    """Debian's ``prometheus`` with its TSDB and config in a temp dir.

    Give either `config_text` (a whole prometheus.yml, used verbatim) or `scrape_targets`
    (job name -> base URL, scraped every `scrape_interval` with ``honor_labels`` so a
    Pushgateway's job/instance labels survive) plus `rule_files`.
    """

    binary = "prometheus"

    def __init__(
        self,
        config_text: str | None = None,
        *,
        scrape_targets: Mapping[str, str] | None = None,
        scrape_interval: float = 1.0,
        evaluation_interval: float = 1.0,
        rule_files: Sequence[str | Path] = (),
        port: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        if config_text is not None and (scrape_targets or rule_files):
            raise DaemonError("give Prometheus either config_text or scrape_targets/rule_files")
        super().__init__(port=port, extra_args=extra_args, startup_timeout=startup_timeout)
        self.config_text = config_text
        self.scrape_targets = dict(scrape_targets or {})
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = [Path(path).resolve() for path in rule_files]

    def render_config(self) -> str:
        """The prometheus.yml this instance runs with."""
        if self.config_text is not None:
            return self.config_text
        scrape_configs = []
        for job, base_url in self.scrape_targets.items():
            url = httpx.URL(base_url)
            scrape_configs.append(
                {
                    "job_name": job,
                    "honor_labels": True,
                    "scheme": url.scheme,
                    "metrics_path": url.path if url.path not in ("", "/") else "/metrics",
                    "static_configs": [{"targets": [f"{url.host}:{url.port}"]}],
                }
            )
        config = {
            "global": {
                "scrape_interval": format_duration(self.scrape_interval),
                "evaluation_interval": format_duration(self.evaluation_interval),
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": scrape_configs,
        }
        return yaml.safe_dump(config, sort_keys=False)

    def prepare(self, workdir: Path) -> None:
        (workdir / "prometheus.yml").write_text(self.render_config(), encoding="utf-8")

    def arguments(self, port: int, workdir: Path) -> list[str]:
        return [
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Lets a test reload rules with POST /-/reload instead of restarting.
            "--web.enable-lifecycle",
        ]

    def reload(self) -> None:
        """Re-read the config and rule files (POST ``/-/reload``)."""
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            response = client.post(f"{self.url}/-/reload")
        if response.status_code != 200:
            raise DaemonError(f"prometheus reload failed: {response.text.strip()}")


class Alertmanager(Daemon):
    """Debian's ``prometheus-alertmanager`` with `config_text` as alertmanager.yml.

    Clustering is disabled: a test instance must not gossip with a production cluster.
    """

    binary = "prometheus-alertmanager"

    def __init__(
        self,
        config_text: str,
        *,
        port: int = 0,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(port=port, extra_args=extra_args, startup_timeout=startup_timeout)
        self.config_text = config_text

    def prepare(self, workdir: Path) -> None:
        (workdir / "alertmanager.yml").write_text(self.config_text, encoding="utf-8")

    def arguments(self, port: int, workdir: Path) -> list[str]:
        return [
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]

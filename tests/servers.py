"""Debian's PostgreSQL, Redis and nginx, started on free loopback ports and always stopped.

    with postgres_server(tmp_path) as pg:
        pg.psql("CREATE TABLE users (id int)")
    with redis_server(tmp_path, password="s3cret") as redis: ...
    with nginx_server(tmp_path, config_text) as nginx: ...

Each server runs in the test's temporary directory with its own data, socket and logs.
PostgreSQL refuses to run as root, so under root it runs as `nobody` (through `runuser`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "PG_BIN",
    "Nginx",
    "Postgres",
    "Redis",
    "free_port",
    "nginx_server",
    "postgres_server",
    "redis_server",
    "require",
]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = Path("/usr/bin/redis-server")
NGINX = Path("/usr/sbin/nginx")
#: Every server gets this long to come up; a slow CI runner needs a few seconds, never more.
START_DEADLINE = 30.0


def require(*binaries: Path) -> None:
    """Skip, naming the package, when a server binary is missing (`make system-deps` installs it)."""
    for binary in binaries:
        if not binary.exists():
            pytest.skip(f"{binary} not installed (make system-deps installs postgresql, redis-server, nginx)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {START_DEADLINE:g}s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-5:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    password: str

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    def pg_dump(self, database: str, destination: Path) -> None:
        with destination.open("wb") as out:
            subprocess.run(
                ["pg_dump", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, database],
                env={**os.environ, "PGPASSWORD": self.password},
                stdout=out, timeout=60, check=True,
            )  # fmt: skip


def _as_server_user(directory: Path) -> list[str]:
    """The command prefix that runs PostgreSQL's tools as a user it accepts."""
    if os.geteuid() != 0:
        return []
    shutil.chown(directory, "nobody")
    return ["runuser", "-u", "nobody", "--"]


@contextmanager
def postgres_server(password: str = "restore-check-pw") -> Iterator[Postgres]:
    """A fresh cluster: superuser `postgres` with a password, on a free loopback port.

    Its directory is a new one under the system's temp dir, not pytest's `tmp_path`: that
    one is private to root, where the server's user could not reach it."""
    require(PG_BIN / "initdb", PG_BIN / "pg_ctl")
    with (
        tempfile.TemporaryDirectory(prefix="slo-postgres-") as directory,
        _postgres_in(Path(directory), password) as server,
    ):
        yield server


@contextmanager
def _postgres_in(home: Path, password: str) -> Iterator[Postgres]:
    prefix = _as_server_user(home)
    data, log, pwfile = home / "data", home / "server.log", home / "pwfile"
    pwfile.write_text(password + "\n")
    if prefix:
        shutil.chown(pwfile, "nobody")
    subprocess.run(
        [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={home} -c fsync=off"
    subprocess.run(
        [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
         "-t", str(int(START_DEADLINE)), "start"],
        capture_output=True, timeout=START_DEADLINE + 10, check=True,
    )  # fmt: skip
    try:
        _wait_for_port(port, None, "postgres", log)
        yield Postgres(port=port, user="postgres", password=password)
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip


@dataclass(frozen=True)
class Redis:
    port: int
    password: str | None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextmanager
def redis_server(tmp_path: Path, *directives: str, password: str | None = None) -> Iterator[Redis]:
    """redis-server with no persistence, `directives` (``"maxmemory 2mb"``) and a password."""
    require(REDIS_SERVER)
    home = tmp_path / f"redis-{len(list(tmp_path.glob('redis-*')))}"
    home.mkdir()
    port = free_port()
    lines = [
        "bind 127.0.0.1",
        f"port {port}",
        f"dir {home}",
        'save ""',
        "appendonly no",
        "daemonize no",
        f"logfile {home / 'redis.log'}",
        *([f"requirepass {password}"] if password else []),
        *directives,
    ]
    config = home / "redis.conf"
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [str(REDIS_SERVER), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process, "redis-server", home / "redis.log")
        yield Redis(port=port, password=password)
    finally:
        _stop(process)


@dataclass(frozen=True)
class Nginx:
    home: Path


@contextmanager
def nginx_server(tmp_path: Path, http_block: str, ports: list[int]) -> Iterator[Nginx]:
    """nginx in the foreground with `http_block` as its http {} content; waits for `ports`."""
    require(NGINX)
    home = tmp_path / "nginx"
    (home / "logs").mkdir(parents=True)
    # As root, workers would switch to `nobody`, who cannot enter pytest's private tmp_path.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = home / "nginx.conf"
    config.write_text(
        f"{user}daemon off;\nmaster_process on;\nworker_processes 1;\npid {home}/nginx.pid;\n"
        f"error_log {home}/logs/error.log info;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log {home}/logs/access.log;\n"
        f"  client_body_temp_path {home}/body;\n  proxy_temp_path {home}/proxy;\n"
        f"  fastcgi_temp_path {home}/fastcgi;\n  uwsgi_temp_path {home}/uwsgi;\n"
        f"  scgi_temp_path {home}/scgi;\n{http_block}\n}}\n"
    )
    process = subprocess.Popen(
        [str(NGINX), "-p", str(home), "-c", str(config), "-e", str(home / "logs" / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports:
            _wait_for_port(port, process, "nginx", home / "logs" / "error.log")
        yield Nginx(home=home)
    finally:
        _stop(process)

"""What a locustfile needs from `monitoring.yaml`: targets, auth, weights, think time.

Runs inside Locust only (it imports it). Every Locust process, workers on other machines
included, reads the config itself from ``SLO_CONFIG`` (default ``monitoring.yaml``) and
``SLO_ENV`` (default ``local``), so tokens come from each machine's environment and never
travel in Locust's messages. In a locustfile::

    plan = LoadPlan.from_environment(events)

    @plan.scenario("api_health", target="api")
    class ApiHealth(FastHttpUser):
        @task
        def health(self) -> None:
            self.client.get("/health")

The decorator gives the class the target's URL, headers, timeout and TLS settings, the
weight from ``load.scenarios`` and the think time from ``load.think_time_min/max``; the
class attribute ``target`` keeps the config's :class:`~slo.config.Target` (e.g. its model). A weight
the config gives to a scenario no class declares is a mistake, reported before the run.
"""

# Locust annotates only part of its API (event hooks and response helpers are untyped).
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import gevent
import gevent.ssl
from locust import between
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpUser, ResponseContextManager
from locust.event import Events

from slo import compat, redact
from slo.config import Config, ConfigError, load_config
from slo.loadgate.samples import CONFIG_ERROR_PREFIX, CONFIG_ERROR_STATUS, STREAM_CONTEXT_KEY
from slo.options import Sources, resolve
from slo.units import format_ms

# Every Locust process imports this module, most of them for scenarios that never stream or
# fail: the stream reader and the error classifier (slo.exchange, which needs httpx)
# are imported where they are first used, not here (they would double a worker's start-up).

__all__ = ["LoadPlan", "expect_json", "read_chat_stream"]

User = TypeVar("User", bound=type[FastHttpUser])


def _config_error(message: str) -> NoReturn:
    # `slo load` shows this line as its own usage error: the same words wherever found.
    print(f"{CONFIG_ERROR_PREFIX}{message}", file=sys.stderr, flush=True)
    raise SystemExit(CONFIG_ERROR_STATUS)


class LoadPlan:
    """The selected environment's targets and the `load:` section, for user classes."""

    def __init__(self, config: Config, events: Events) -> None:
        self.config = config
        self.settings = config.load
        self.declared: set[str] = set()
        self.problems: list[str] = []
        # The first event after every class of the locustfile exists, and before Locust
        # builds its environment (which rejects a file whose weights are all 0 with a bare
        # ValueError): the moment to name a misspelt scenario.
        events.init_command_line_parser.add_listener(self._check)

    @classmethod
    def from_environment(cls, events: Events) -> LoadPlan:
        """Load the config named by ``SLO_CONFIG`` / ``SLO_ENV``; a mistake exits (status 4)."""
        sources = Sources(environ=os.environ)
        try:
            return cls(
                load_config(
                    str(resolve("config", sources).value), str(resolve("env", sources).value), flag=None
                ),
                events,
            )
        except ConfigError as exc:
            _config_error(str(exc))

    def scenario(self, name: str, *, target: str) -> Callable[[User], User]:
        """Configure a FastHttpUser class as scenario ``name`` against config target ``target``."""
        self.declared.add(name)
        weight = self.settings.scenarios.get(name, 0)

        def configure(user_class: User) -> User:
            user_class.weight = weight
            if weight == 0:
                # Disabled: Locust drops it, and its target need not exist here.
                return user_class
            if target not in self.config.environment.targets:
                self.problems.append(
                    f"load.scenarios.{name}: its target {target!r} is not defined in "
                    f"environment {self.config.env_name!r} (give it weight 0 there)"
                )
                return user_class
            settings = self.config.environment.targets[target]
            user_class.target = settings  # type: ignore[attr-defined]  # for the class's own use
            user_class.host = settings.url
            user_class.default_headers = settings.request_headers()
            # A redirect is measured as the answer it is, never followed: following it would
            # send the target's secret headers to whatever origin the target names.
            user_class.max_redirects = 0
            user_class.network_timeout = settings.timeout
            user_class.connection_timeout = settings.timeout
            user_class.insecure = not settings.verify
            if settings.verify and settings.ca_file is not None:
                user_class.ssl_context_factory = functools.partial(
                    gevent.ssl.create_default_context, cafile=str(settings.ca_file)
                )
            user_class.wait_time = between(self.settings.think_time_min, self.settings.think_time_max)
            return user_class

        return configure

    def _check(self, **_: Any) -> None:
        unknown = sorted(set(self.settings.scenarios) - self.declared)
        if unknown:
            known = ", ".join(sorted(self.declared)) or "none"
            self.problems.insert(
                0, f"load.scenarios: no scenario {unknown[0]!r} in the locustfile (known: {known})"
            )
        if self.problems:
            _config_error(f"{self.config.source}: {self.problems[0]}")


def expect_json(response: ResponseContextManager, **fields: object) -> dict[str, Any] | None:
    """Fail the request unless its body is a JSON object with these top-level values.

    For use inside ``with self.client.get(..., catch_response=True) as response:``. A 200
    with a broken body is an outage for the caller, so a load test must count it as one.
    Returns the parsed body (None when the request already failed). An error status is
    reported with its reason and the first line of the error the target sent
    (``429 rate_limit: litellm.RateLimitError: ...``), without the request's secrets.
    """
    if _failed(response):
        return None
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        response.failure("response body is not valid JSON")
        return None
    if not isinstance(body, dict):
        response.failure("response body is not a JSON object")
        return None
    for key, wanted in fields.items():
        if body.get(key) != wanted:
            response.failure(f"{key} is {body.get(key)!r}, expected {wanted!r}")
            return None
    return body


def _failed(response: ResponseContextManager) -> bool:
    """Whether the request already failed; an error status is reported with its reason and the
    first line of the error the target sent, without the request's secrets."""
    if getattr(response, "error", None) is None:
        return False
    status = response.status_code or 0
    if status >= 400:
        from slo.exchange.failures import classify_status  # see the imports

        reason, message = classify_status(status, _text(response))
        response.failure(redact.scrub(f"{status} {reason}: {message}" if message else f"{status} {reason}"))
    # Otherwise a transport error: Locust reports it as it is.
    return True


class _StreamProblem(Exception):
    """The stream broke a bound: too long a line, too large a body, no end in time."""


def read_chat_stream(
    response: ResponseContextManager, started: float, *, max_bytes: int, timeout: float
) -> None:
    """Read a streamed chat completion and make it the request's outcome.

    For use inside ``with self.client.post(..., stream=True, catch_response=True) as
    response:``, with ``started`` the ``time.perf_counter()`` before the request was sent.
    The request's response time becomes the stream's total time (Locust's would end at the
    headers), its first-token time and token rate go to the exact recorder in the request's
    context, and a stream that is not an answer (:func:`slo.loadgate.stream.problem`) or breaks
    a bound (a line over :data:`~slo.exchange.body.MAX_LINE`, a body over ``max_bytes``, no end within
    ``timeout`` seconds of ``started``) fails the request.
    """
    if _failed(response):
        return
    # See the imports: only a streaming scenario needs these.
    from slo.exchange.body import BodyTooLarge, split_lines
    from slo.loadgate import stream as judged

    stream = judged.ChatStream(judged.TokenTiming(started))
    cut = None
    lines = split_lines(_arrived(response, max_bytes))
    left = max(0.001, timeout - (time.perf_counter() - started))
    try:
        with gevent.Timeout(left, _StreamProblem(f"no end within stream_timeout {format_ms(timeout)}")):
            judged.read_chat_stream(lines, stream)
            # Read to the end of the body, as any client does: the connection goes back to the
            # pool only then (otherwise every stream would cost a new one).
            for _ in lines:
                pass
    except (_StreamProblem, BodyTooLarge, *FAILURE_EXCEPTIONS) as exc:
        cut = f"stream cut after {stream.chunks} chunk(s), before [DONE]: {str(exc) or type(exc).__name__}"
    meta = response.request_meta
    meta["response_time"] = 1000 * (time.perf_counter() - started)
    # A new dict: Locust's context may be a shared default, never to be written into.
    meta["context"] = {**meta.get("context", {}), STREAM_CONTEXT_KEY: judged.sample(stream)}
    # A cut after [DONE] (while reading the body's end) leaves a whole answer.
    problem = cut if cut is not None and not stream.done else judged.problem(stream)
    if problem is not None:
        response.failure(redact.scrub(problem))


def _arrived(response: ResponseContextManager, max_bytes: int) -> Iterator[bytes]:
    """The body in the pieces the socket gives, each as soon as it is in, up to `max_bytes`."""
    received = 0
    for piece in compat.body_as_it_arrives(response.stream):
        received += len(piece)
        if received > max_bytes:
            raise _StreamProblem(f"more than {max_bytes} bytes (the target's max_response_bytes)")
        yield piece


def _text(response: ResponseContextManager) -> str:
    try:
        return (response.content or b"").decode("utf-8", "replace")
    except (AttributeError, TypeError):
        return ""

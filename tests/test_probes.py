"""`pytest probes/` against the real reference stack: all pass when it is healthy, and each
injected fault fails the right probes, and only those, with a message a person on call reads.

Each test runs the repo's probes in a pytester project (see `probe_project`) whose `local`
environment points at one reference stack shared by the module; faults are cleared after
every test. Faults that leave lasting traces in the stack's counters (5xx) get their own stack.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from loopback import loopback_server
from probe_project import failed_ids, junit_cases, make_probe_project, probe_config, run_probes
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway
from devstack.refstack import ReferenceStack

CHECK_API_HEALTH = "test_checks::test_check[api-health-status]"
CHECK_SANDBOX = "test_checks::test_check[sandbox-status]"
HEALTH = "test_health::test_api_health"
SANDBOX = "test_sandbox::test_sandbox_status"
LATENCY_API = "test_latency::test_latency_percentile[api/health]"
LATENCY_GATEWAY = "test_latency::test_latency_percentile[gateway/health/liveliness]"
METRICS_5XX = "test_metrics_endpoint::test_api_5xx_ratio[api]"
METRICS_FAMILIES = "test_metrics_endpoint::test_metric_families_present[api]"
GATEWAY_READINESS = "test_gateway::test_gateway_readiness"
GATEWAY_ENDPOINTS = "test_gateway::test_gateway_model_healthy[claude-sonnet-4]"
GATEWAY_COMPLETION = "test_gateway::test_chat_completion[claude-sonnet-4]"
GATEWAY_STREAM = "test_gateway::test_streaming_time_to_first_token[claude-sonnet-4]"

#: The probes the shipped config runs that need no service: they pass on the runner itself.
RUNNER_PROBES = 2
#: The seed deployment's probes (backups, cache, load balancer, logs): the shipped `local`
#: environment configures none of them, and each says which section is missing.
DEPLOYMENT_SKIPPED = {
    *(f"test_backups::{name}" for name in (
        "test_newest_backup_is_fresh", "test_newest_backup_is_complete", "test_newest_backup_is_readable",
        "test_newest_backup_manifest", "test_backup_retention", "test_newest_backup_restores",
    )),
    *(f"test_cache::{name}" for name in (
        "test_cache_ping", "test_cache_memory", "test_cache_evictions_and_hit_ratio",
        "test_token_counters_expire", "test_cache_replicas",
    )),
    "test_load_balancer::test_upstream_health[none]",
    "test_load_balancer::test_balancer_health",
    "test_load_balancer::test_plain_http_redirects_to_https",
    "test_load_balancer::test_tls_versions",
    "test_logs::test_error_count[none]",
    "test_logs::test_slow_requests[none]",
    "test_logs::test_request_rate_anomaly[none]",
}  # fmt: skip
#: Off in the shipped config: the Messages API probes (apis: [chat]), the headroom and the
#: budget probes (no floor), the tool-use round trips (tool_use: false).
GATEWAY_OFF = {
    *(f"test_gateway::{name}[claude-sonnet-4]" for name in (
        "test_messages", "test_messages_streaming", "test_rate_limit_headroom",
        "test_tool_use", "test_messages_tool_use",
    )),
    "test_gateway::test_budget_left",
}  # fmt: skip
#: node_exporter and TLS (trust and expiry): the local environment has neither, and says so.
SKIPPED = 3 + len(DEPLOYMENT_SKIPPED) + len(GATEWAY_OFF)
ALL_PASS = {"passed": 22, "skipped": SKIPPED}


@dataclass(frozen=True)
class StoppedStack:
    """The URLs a stack had before it stopped: nothing listens there any more."""

    api_url: str
    gateway_url: str


def assert_no_traceback(result: pytest.RunResult) -> None:
    """A ProbeFailure is one line; a plain `assert` in a probe shows pytest's usual excerpt of
    the probe. Neither shows a Python traceback or frames from the library or httpx."""
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "/slo/probe/client.py" not in output
    assert "site-packages/httpx" not in output


def test_healthy_stack_passes_every_probe(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack)
    result = run_probes(pytester, "-rs")
    result.assert_outcomes(**ALL_PASS)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] probes/test_resources.py*: no target sets node_exporter"])
    # Both TLS probes (trust and expiry) skip, each saying why; pytest groups skips by place.
    tls_skips = [
        int(line.split("[", 1)[1].split("]", 1)[0])
        for line in result.stdout.lines
        if line.startswith("SKIPPED [") and " probes/test_tls.py" in line
        and line.endswith(": no https target in this environment")
    ]  # fmt: skip
    assert sum(tls_skips) == 2
    # JUnit goes to reports/ under the rootdir without being asked, for the CI.
    result.stdout.fnmatch_lines([f"*generated xml file: {pytester.path / 'reports' / 'junit.xml'}*"])
    cases = junit_cases(pytester)
    assert len(cases) == ALL_PASS["passed"] + SKIPPED
    assert {case_id for case_id, case in cases.items() if case.outcome == "skipped"} == {
        "test_resources::test_target_host_resources[none]",
        "test_tls::test_certificate_trusted[none]",
        "test_tls::test_certificate_expiry[none]",
        *DEPLOYMENT_SKIPPED,
        *GATEWAY_OFF,
    }


def test_explicit_junit_path_wins_over_the_default(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack)
    result = run_probes(pytester, "--junitxml", "ci/probes.xml", "probes/test_health.py")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "ci" / "probes.xml").is_file()
    assert not (pytester.path / "reports" / "junit.xml").exists()


@pytest.mark.slow
def test_api_5xx_fails_the_api_probes_only(pytester: pytest.Pytester) -> None:
    # Its own stack: the 5xx answers stay in the API's counters, which the metrics probe
    # rightly judges, and would fail the 5xx-ratio probe of every later test.
    with ReferenceStack() as own:
        make_probe_project(pytester, own)
        own.set_faults("api", error_rate=1.0, status=503)
        result = run_probes(pytester)

    assert failed_ids(pytester) == {
        CHECK_API_HEALTH,
        CHECK_SANDBOX,
        HEALTH,
        SANDBOX,
        LATENCY_API,
        METRICS_5XX,
    }
    result.stdout.fnmatch_lines(
        [
            "api GET /health returned 503 (expected 200, overloaded) in * ms: "
            "fault injected: error_rate=1, status=503",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*api GET /metrics: 5xx ratio 100.00% (* of * requests since the counters started "
            "(no previous reading)) over the 5% budget*"
        ]
    )
    assert_no_traceback(result)


@pytest.mark.slow
def test_hung_api_times_out_once_per_probe_and_the_run_ends(
    pytester: pytest.Pytester, stack: ReferenceStack
) -> None:
    make_probe_project(pytester, stack, timeout="1s")
    stack.set_faults("api", hang=True)
    # In its own process with a hard limit, as a timer runs it: a probe that waited for the
    # hung API N times (or for ever) fails this test instead of hanging it.
    result = run_probes(pytester, subprocess=True, timeout=60)

    assert failed_ids(pytester) == {CHECK_API_HEALTH, CHECK_SANDBOX, HEALTH, SANDBOX, LATENCY_API}
    result.stdout.fnmatch_lines(
        [
            "api: GET http://127.0.0.1:*/health: timed out waiting for the response headers"
            " (1000 ms deadline*) after *"
        ]
    )
    # The latency probe gave up after its first sample: one timeout, not 60.
    result.stdout.fnmatch_lines(
        [
            "*api /health: P95 over the 2000 ms threshold*"
            "1 of 1 samples over, 1 failed (timed out waiting for the response headers*"
        ]
    )
    assert_no_traceback(result)


def test_malformed_gateway_json(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack)
    stack.set_faults("gateway", malformed=True)
    result = run_probes(pytester)

    # Liveliness only checks the status, and the readiness check's regex still finds
    # "healthy" in the cut-off body: both rightly pass.
    assert failed_ids(pytester) == {GATEWAY_READINESS, GATEWAY_ENDPOINTS, GATEWAY_COMPLETION, GATEWAY_STREAM}
    result.stdout.fnmatch_lines_random(
        [
            "gateway GET /health/readiness returned malformed JSON in * ms: "
            '{"status": "healthy", "detail": "truncated',
            "gateway GET /health returned malformed JSON in *",
            "gateway POST /v1/chat/completions model=claude-sonnet-4 returned malformed JSON in *",
        ]
    )
    # The fault answers a stream request with its JSON body too.
    assert "asked for a stream, got application/json" in junit_cases(pytester)[GATEWAY_STREAM].message


def test_sandbox_violations_over_the_budget(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack)
    stack.set_faults("api", sandbox_violations=50)
    result = run_probes(pytester)

    assert failed_ids(pytester) == {SANDBOX}
    result.stdout.fnmatch_lines(
        [
            "*api GET /sandbox/status reports 50 sandbox violations "
            "(limit 10, budgets.sandbox_violations_per_minute)"
        ]
    )


def test_sandbox_violations_under_the_budget_pass(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack)
    stack.set_faults("api", sandbox_violations=9)
    run_probes(pytester, "probes/test_sandbox.py").assert_outcomes(passed=1)


def test_unhealthy_model_endpoint(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    models = ["claude-sonnet-4", "claude-haiku-3-5"]
    make_probe_project(pytester, stack, probes={"gateway": {"models": models}})
    stack.set_faults("gateway", unhealthy_endpoints=["claude-haiku-3-5"])
    result = run_probes(pytester)

    # Each model group is its own probe: the healthy one passes.
    assert failed_ids(pytester) == {"test_gateway::test_gateway_model_healthy[claude-haiku-3-5]"}
    result.stdout.fnmatch_lines(
        [
            "*gateway GET /health: model group claude-haiku-3-5 down, 1 of 1 deployment(s) unhealthy: "
            "claude-haiku-3-5 (anthropic/claude-haiku-3-5, model_id *, api_base https://api.anthropic.com): "
            "litellm.APIConnectionError: endpoint marked unhealthy (fault)"
        ]
    )


def test_latency_over_the_slo_threshold(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    # The shipped 2 s threshold would need 2 s requests; a 100 ms SLO and 150 ms of injected
    # latency make the same point in a fraction of the time.
    slos = [
        {**slo, "sli": {**slo["sli"], "threshold": "100ms"}} if slo["name"] == "api-probe-latency" else slo
        for slo in probe_config(stack)["slos"]
    ]
    make_probe_project(pytester, stack, slos=slos)
    stack.set_faults("api", latency_ms=150)
    result = run_probes(pytester)

    assert failed_ids(pytester) == {LATENCY_API}
    result.stdout.fnmatch_lines(
        ["*api /health: P95 over the 100 ms threshold: P95 * ms, *1 of 1 samples over"]
    )


def test_too_few_samples_is_inconclusive(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack, probes={"latency": {"samples": 10}})
    result = run_probes(pytester)

    assert failed_ids(pytester) == {LATENCY_API, LATENCY_GATEWAY}
    result.stdout.fnmatch_lines_random(
        [
            "*api /health: P95 inconclusive: 10 samples; a claim at 95% confidence needs at least 59 samples "
            "with none over the threshold: *0 of 10 samples over",
            "*gateway /health/liveliness: P95 inconclusive: 10 samples;*",
        ]
    )


def test_stopped_stack_is_connection_refused(pytester: pytest.Pytester) -> None:
    with ReferenceStack() as gone:
        stopped = StoppedStack(gone.api_url, gone.gateway_url)
    make_probe_project(pytester, stopped)
    result = run_probes(pytester)

    # Every network probe fails (the metrics probes of both targets in their shared scrape
    # fixture: errors).
    result.assert_outcomes(passed=RUNNER_PROBES, failed=12, errors=8, skipped=SKIPPED)
    result.stdout.fnmatch_lines_random(
        [
            "api: GET http://127.0.0.1:*/health: connection refused after * ms",
            "gateway: POST http://127.0.0.1:*/v1/chat/completions: connection refused after * ms",
        ]
    )
    assert_no_traceback(result)


def test_metrics_of_a_freshly_started_api_pass(pytester: pytest.Pytester) -> None:
    # Before its first request the API declares its labelled families without samples; a
    # restart must not look like missing metrics.
    with ReferenceStack() as fresh:
        make_probe_project(pytester, fresh)
        result = run_probes(pytester, "-rs", "probes/test_metrics_endpoint.py")
    # The gateway's too: the API's, and the gateway's under LiteLLM's names.
    result.assert_outcomes(passed=6, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED*: api GET /metrics: no requests counted since the counters started "
            "(no previous reading), no 5xx ratio to check",
            "SKIPPED*: gateway GET /metrics/: no requests counted since the counters started "
            "(no previous reading), no 5xx ratio to check",
        ]
    )
    assert METRICS_FAMILIES not in failed_ids(pytester)


TOKEN = "sk-probe-0c5e1d7a9b-never-print"


def test_token_from_the_environment_authenticates_and_never_shows(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_from_env = {"token": "${PROBE_API_TOKEN}"}
    targets = {"api": token_from_env, "gateway": token_from_env}
    with ReferenceStack("--api-key", TOKEN) as secured:
        make_probe_project(pytester, secured, environments={"local": {"targets": targets}})
        monkeypatch.setenv("PROBE_API_TOKEN", TOKEN)
        result = run_probes(pytester)
        result.assert_outcomes(**ALL_PASS)
        passed_report = (pytester.path / "reports" / "junit.xml").read_text()

        wrong = TOKEN[::-1]
        monkeypatch.setenv("PROBE_API_TOKEN", wrong)
        refused = run_probes(pytester)

    # The stack does check the token: with the wrong one the authenticated routes refuse.
    assert HEALTH in failed_ids(pytester)
    refused.stdout.fnmatch_lines(["api GET /health returned 401 *"])
    failed_report = (pytester.path / "reports" / "junit.xml").read_text()
    for text in (result.stdout.str(), result.stderr.str(), passed_report):
        assert TOKEN not in text
    for text in (refused.stdout.str(), refused.stderr.str(), failed_report):
        assert TOKEN not in text
        assert wrong not in text


# --- probes that need no stack: TLS expiry and host resources ----------------------------


class Answer(BaseHTTPRequestHandler):
    """Answers every GET with the server's `body` (a node_exporter's /metrics, or "ok")."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def local_server(body: bytes, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    with loopback_server(Answer, tls) as server:
        server.body = body  # type: ignore[attr-defined]
        yield server.server_address[1]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_port(ca: trustme.CA) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with local_server(b"ok", context) as port:
        yield port


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def with_https_target(**settings: object) -> dict[str, Any]:
    return {"environments": {"local": {"targets": {"secure": settings}}}}


def test_tls_certificate_of_an_https_target(
    pytester: pytest.Pytester, https_port: int, ca_file: Path
) -> None:
    make_probe_project(
        pytester, None, **with_https_target(url=f"https://localhost:{https_port}", ca_file=str(ca_file))
    )
    result = run_probes(pytester, "probes/test_tls.py")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED*test_certificate_trusted[[]secure[]]*secure localhost:*: certificate verified (*)",
            "PASSED*test_certificate_expiry[[]secure[]]*certificate valid for * more days (*)",
        ]
    )
    assert set(junit_cases(pytester)) == {
        "test_tls::test_certificate_trusted[secure]",
        "test_tls::test_certificate_expiry[secure]",
    }


def test_tls_certificate_expiring_too_soon_warns_without_an_outage(
    pytester: pytest.Pytester, https_port: int, ca_file: Path
) -> None:
    """Renewal due is a failed `warning` probe, never a bad run of the target: the target's
    availability SLO must not burn (or page) while clients still connect."""
    secure = with_https_target(url=f"https://localhost:{https_port}", ca_file=str(ca_file))
    make_probe_project(pytester, None, probes={"tls": {"min_days_left": 1_000_000}}, **secure)
    with Pushgateway() as pushgateway:
        result = pytester.runpytest("probes/test_tls.py", "--pushgateway", pushgateway.url)
        pushed = httpx.get(f"{pushgateway.url}/metrics", timeout=10).text
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*secure localhost:*: certificate expires in * days (*), under 1000000 (probes.tls.min_days_left)"]
    )
    samples = {
        (sample.name, sample.labels.get("probe", ""), sample.labels.get("kind", "")): sample.value
        for family in text_string_to_metric_families(pushed)
        for sample in family.samples
        if sample.labels.get("target") == "secure"
    }
    expiry = "probes/test_tls.py::test_certificate_expiry[secure]"
    assert samples[("synthetic_probe_success", expiry, "warning")] == 0
    assert 0 < samples[("synthetic_tls_certificate_days_left", expiry, "")] < 1_000_000
    assert samples[("synthetic_target_runs_total", "", "")] == 1
    assert samples[("synthetic_target_failed_runs_total", "", "")] == 0


@contextmanager
def serving(certificate: Callable[[ssl.SSLContext], None]) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate(context)
    with local_server(b"ok", context) as port:
        yield port


def self_signed(ca: trustme.CA, context: ssl.SSLContext, tmp: Path) -> None:
    # The CA's own certificate is self-signed: served as the leaf, nothing vouches for it.
    (tmp / "self.pem").write_bytes(ca.cert_pem.bytes() + ca.private_key_pem.bytes())
    context.load_cert_chain(tmp / "self.pem")


@pytest.mark.parametrize(
    ("served", "trusted", "failure"),
    [
        ("self-signed", False, "self-signed certificate (self-signed certificate)"),
        ("localhost", False, "unknown issuer (unable to get local issuer certificate)"),
        (
            "other.example",
            True,
            "hostname mismatch (Hostname mismatch, certificate is not valid for 'localhost'.)",
        ),
        ("expired", True, "expired certificate (certificate has expired)"),
    ],
)
def test_tls_probe_names_the_verification_failure(
    pytester: pytest.Pytester, ca: trustme.CA, ca_file: Path, served: str, trusted: bool, failure: str
) -> None:
    def certificate(context: ssl.SSLContext) -> None:
        if served == "self-signed":
            self_signed(trustme.CA(), context, pytester.path)
        elif served == "expired":
            yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
            month_before = yesterday - datetime.timedelta(days=30)
            ca.issue_cert("localhost", not_before=month_before, not_after=yesterday).configure_cert(context)
        else:
            ca.issue_cert(served).configure_cert(context)

    with serving(certificate) as port:
        target: dict[str, object] = {"url": f"https://localhost:{port}"}
        if trusted:
            target["ca_file"] = str(ca_file)
        make_probe_project(pytester, None, **with_https_target(**target))
        result = run_probes(pytester, "-rs", "probes/test_tls.py")
    # An outage of the target; the expiry probe has no verified certificate to read.
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([f"secure localhost:*: certificate verification failed: {failure}"])
    result.stdout.fnmatch_lines(["SKIPPED*no verified certificate to read (test_certificate_trusted says*"])
    assert failed_ids(pytester) == {"test_tls::test_certificate_trusted[secure]"}
    assert_no_traceback(result)


def test_tls_probe_skips_a_target_that_turns_verification_off(
    pytester: pytest.Pytester, https_port: int
) -> None:
    make_probe_project(
        pytester, None, **with_https_target(url=f"https://localhost:{https_port}", verify=False)
    )
    result = run_probes(pytester, "-rs", "probes/test_tls.py")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED*target secure sets verify: false, so its certificate is not checked"]
    )


def test_runner_resources_over_their_thresholds(pytester: pytest.Pytester) -> None:
    make_probe_project(pytester, None, probes={"resources": {"disk": 0, "memory": 0}})
    result = run_probes(pytester, "probes/test_resources.py")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines_random(
        [
            "*runner disk / *% used, over 0% (probes.resources.disk)",
            "*runner memory *% used, over 0% (probes.resources.memory)",
        ]
    )


def node_exporter_metrics(disk_used: float, memory_used: float, reserved: float = 0.0) -> bytes:
    """A node_exporter's metrics; `reserved` is the share of the disk kept free for root."""
    size, total = 100e9, 16e9
    labels = 'device="/dev/sda1",fstype="ext4",mountpoint="/"'
    return (
        "# TYPE node_memory_MemAvailable_bytes gauge\n"
        f"node_memory_MemAvailable_bytes {total * (1 - memory_used)}\n"
        "# TYPE node_memory_MemTotal_bytes gauge\n"
        f"node_memory_MemTotal_bytes {total}\n"
        "# TYPE node_filesystem_avail_bytes gauge\n"
        f'node_filesystem_avail_bytes{{device="tmpfs",fstype="tmpfs",mountpoint="/run"}} 1\n'
        f"node_filesystem_avail_bytes{{{labels}}} {size * (1 - disk_used)}\n"
        "# TYPE node_filesystem_size_bytes gauge\n"
        f'node_filesystem_size_bytes{{device="tmpfs",fstype="tmpfs",mountpoint="/run"}} 1\n'
        f"node_filesystem_size_bytes{{{labels}}} {size}\n"
        "# TYPE node_filesystem_free_bytes gauge\n"
        f"node_filesystem_free_bytes{{{labels}}} {size * (1 - disk_used + reserved)}\n"
    ).encode()


@pytest.mark.parametrize(
    ("disk", "memory", "reserved", "failure"),
    [
        (0.5, 0.5, 0.0, None),
        (0.95, 0.5, 0.0, "api host: disk / 95.0% used (limit 90%)"),
        (0.95, 0.97, 0.0, "api host: memory 97.0% used (limit 90%); disk / 95.0% used (limit 90%)"),
        # df's Use%: 85 GB used (5 GB more reserved for root), 10 GB available: 85 / 95 = 89.5 %,
        # under the limit, where 1 - available / size would say 90 % and fail.
        (0.9, 0.5, 0.05, None),
        (0.95, 0.5, 0.05, "api host: disk / 94.7% used (limit 90%)"),
    ],
)
def test_target_host_resources_from_node_exporter(
    pytester: pytest.Pytester, disk: float, memory: float, reserved: float, failure: str | None
) -> None:
    with local_server(node_exporter_metrics(disk, memory, reserved)) as port:
        exporter = {"local": {"targets": {"api": {"node_exporter": f"http://127.0.0.1:{port}"}}}}
        # The seed's thresholds (the helper lifts them for runs about the stack).
        seed_thresholds = {"resources": {"disk": 90, "memory": 90}}
        make_probe_project(pytester, None, probes=seed_thresholds, environments=exporter)
        result = run_probes(pytester, "probes/test_resources.py::test_target_host_resources")
    if failure is None:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*{failure}"])
    assert set(junit_cases(pytester)) == {"test_resources::test_target_host_resources[api]"}

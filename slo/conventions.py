"""Names and defaults shared by every entry point, defined once.

The pytest plugin, `slo load`, `slo rules`/`budget`/`gate`/`dashboard`, `pytest load/` and
the demo all read these; none of them defines its own.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CHECK_CONCURRENCY",
    "CONFIG_FILE",
    "ENVIRONMENT",
    "ENVIRONMENT_PROPERTY",
    "GATE_VERDICT",
    "JOB",
    "LOAD_JOB",
    "LOAD_REPORTS",
    "MAINTENANCE_JOB",
    "MAX_ARTIFACT_BYTES",
    "MAX_CHECK_CONCURRENCY",
    "MAX_RESPONSE_BYTES",
    "PROBE_JUNIT",
    "PROBE_RESULTS",
    "RUN_DEADLINE",
    "USAGE_ERROR",
]

#: The config file looked up in the rootdir (pytest) or the working directory (commands).
CONFIG_FILE = "monitoring.yaml"
#: The environment probed when none is chosen.
ENVIRONMENT = "local"
#: The Pushgateway job of probe runs.
JOB = "synthetic-probes"
#: The Pushgateway job of load runs: never the probes' job, or one push would erase the other.
LOAD_JOB = "load-test"
#: The Pushgateway job of ad-hoc maintenance windows (`slo maintenance start`), one group per
#: environment and target: every runner of a fleet reads them at the start of its runs.
MAINTENANCE_JOB = "synthetic-maintenance"
#: JUnit XML of a probe run, relative to the rootdir, unless ``--junit-xml`` says otherwise.
PROBE_JUNIT = Path("reports") / "junit.xml"
#: A probe run's results with their evidence (`slo.report.runfile`): beside the run's JUnit XML,
#: so this is where they are when ``--junit-xml`` is not given.
PROBE_RESULTS = PROBE_JUNIT.with_name("probes.json")
#: Where `slo gate` writes its verdict unless ``--output`` says otherwise; `slo report` reads it.
GATE_VERDICT = Path("reports") / "gate.json"
#: Where `slo load` and `pytest load/` write ``summary.json`` and Locust's reports.
LOAD_REPORTS = Path("reports") / "load"
#: The JUnit suite property naming the environment a probe run probed (`slo gate` compares it).
ENVIRONMENT_PROPERTY = "slo_environment"
#: Exit code of a usage error, the same as pytest's (``pytest.ExitCode.USAGE_ERROR``).
USAGE_ERROR = 4
#: Default cap of one response body, raw or decompressed (a target's `max_response_bytes`):
#: far above any health, metrics or completion response, small enough for 256 concurrent checks.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: How long a probe run's requests may take in all: under the shipped systemd unit's
#: `TimeoutStartSec=4min` and the CronJob's `activeDeadlineSeconds: 240`, with room for the
#: push deadline and the state lock, so no timer ever kills a run before it is recorded.
RUN_DEADLINE = "200s"
#: The largest file of a run that a command reads back (probe JUnit, `summary.json`, a load
#: baseline, the load results, `probes.json`, `gate.json`): far above any real one, so a
#: stray or hostile file is refused before it is read into memory.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
#: Declarative checks sent at once (``--slo-check-concurrency``), and the most allowed: more
#: is a stampede on the targets, and the batch loop waits on its sockets with select(), whose
#: descriptors end at 1024 (the process has others open too).
CHECK_CONCURRENCY = 256
MAX_CHECK_CONCURRENCY = 512

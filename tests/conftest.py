"""What the project's own tests share: pytester, a clean environment, the reference stack.

The capture server for tests that need a peer to record what it was sent is in
``loopback.py``; a probe project for pytester in ``probe_project.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from hypothesis import settings

from devstack.refstack import ReferenceStack

pytest_plugins = ["pytester"]

# Hypothesis fails an example that takes over 200 ms: a timed assertion, which a machine busy
# with the other xdist worker breaks (seen: test_stats on a loaded CI). Speed is for bench/.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

#: A developer's shell settings that would choose a test's config file, environment,
#: targets, secrets, Pushgateway, Prometheus or reference-stack auth.
RUNNER_SETTING = re.compile(
    r"(SLO|PUSHGATEWAY|PROMETHEUS|REFSTACK)_\w+|(API|GATEWAY)_URL|\w*(_TOKEN|_API_KEY)"
)


@pytest.fixture(scope="session", autouse=True)
def clean_environment() -> Iterator[None]:
    """No runner setting reaches a test, nor the processes it starts (session-wide, so that
    module fixtures such as the reference stack start in the clean environment too)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if RUNNER_SETTING.fullmatch(name)]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    """One reference stack per test module, with a fixed seed for its jitter."""
    with ReferenceStack("--seed", "7") as running:
        yield running


@pytest.fixture(autouse=True)
def _healthy_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that injected faults into the module's stack leaves it healthy for the next."""
    yield
    if "stack" in request.fixturenames:
        shared: ReferenceStack = request.getfixturevalue("stack")
        shared.clear_faults("api")
        shared.clear_faults("gateway")

"""Stopping a child process, the one way: SIGTERM, a grace period, then SIGKILL.

Every process the package starts (Locust master and workers, the reference stack, the local
Prometheus, Pushgateway and Alertmanager) is stopped with :func:`stop`, so none outlives its
owner and none is waited for without a deadline.
"""

from __future__ import annotations

import subprocess
from typing import Any

__all__ = ["stop"]


def stop(process: subprocess.Popen[Any], grace: float) -> int:
    """Terminate `process`, wait up to `grace` seconds, then kill it; its exit status.

    Safe on a process that has already exited (its status is returned as it is).
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode

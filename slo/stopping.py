"""A stopped run keeps what it saw: SIGTERM (systemd or Kubernetes ending a run that outlived
them) stops a probe run the way Ctrl-C does, so the run still records and pushes.

SIGTERM raises :class:`RunStopped` (a KeyboardInterrupt) in the main thread, once: whatever
the probe was waiting on unwinds through its cleanup (psql killed with its process group, the
scratch database dropped), pytest reports the interruption and finishes the session, and the
reporter saves and pushes the results it has, each within its own deadline. A second SIGTERM
during that is ignored; systemd's and Kubernetes' SIGKILL still ends a run that hangs.

The probe that was running is reported failed (``timeout``: it did not finish in the time the
run was given), and the run exits with :data:`STOPPED_EXIT` (128 + SIGTERM, as a shell says).
Ctrl-C keeps pytest's own exit code 2.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["STOPPED_EXIT", "RunStopped", "install", "interrupted_message", "uninstall"]

#: The exit code of a run stopped by SIGTERM.
STOPPED_EXIT = 128 + signal.SIGTERM


class RunStopped(KeyboardInterrupt):
    """The run was told to stop (SIGTERM)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    # Once: saving and pushing what the run saw must not be cut by a second signal.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise RunStopped(f"stopped by {signal.Signals(signum).name}")


def install() -> Any:
    """Stop on SIGTERM from now on; the previous handler, for :func:`uninstall` (None when
    not installed: not the main thread, or someone else handles SIGTERM already)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return None
    return signal.signal(signal.SIGTERM, _stop)


def uninstall(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def interrupted_message(exception: BaseException) -> str:
    """The failure line of the probe that was running when the run was stopped."""
    how = str(exception) if isinstance(exception, RunStopped) else "interrupted (Ctrl-C)"
    return f"{how} before this probe finished: the run was cut short"

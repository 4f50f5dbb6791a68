"""The reference stack: a local, fault-injectable stand-in for the monitored deployment.

An API service (``/health``, ``/sandbox/status``, ``/metrics`` with the seed chapter's metric
names) and a LiteLLM-style OpenAI-compatible gateway, in one process, standard library HTTP.
It is the default target of the probes and the load gate, and the fixture of the project's
integration tests. Run it with ``slo reference-stack``, or from Python with
:class:`ReferenceStack` (a subprocess) or :class:`EmbeddedStack` (threads in this process).
"""

from devstack.refstack.faults import FaultError, Faults
from devstack.refstack.process import ReferenceStack, ReferenceStackError
from devstack.refstack.stack import EmbeddedStack, StackOptions

__all__ = [
    "EmbeddedStack",
    "FaultError",
    "Faults",
    "ReferenceStack",
    "ReferenceStackError",
    "StackOptions",
]

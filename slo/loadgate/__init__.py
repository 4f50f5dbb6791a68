"""The Locust load gate: scenarios run in a subprocess, exact latencies, evidence-based verdict.

Two sides, never mixed in one process (importing Locust monkey-patches it with gevent):

Inside Locust (imported by ``load/locustfile.py`` only)
    :mod:`~slo.loadgate.users` configures user classes from ``monitoring.yaml``;
    :mod:`~slo.loadgate.recorder` records every response time exactly and merges workers.

In `slo load` and `pytest load/`
    :mod:`~slo.loadgate.cli` parses flags, :mod:`~slo.loadgate.runner` starts Locust,
    :mod:`~slo.loadgate.verdict` judges the thresholds, :mod:`~slo.loadgate.summary` writes
    ``summary.json`` and the table, :mod:`~slo.loadgate.push` pushes the verdict.

Shared: :mod:`~slo.config.load` (the ``load:`` section), :mod:`~slo.loadgate.histogram`
and :mod:`~slo.loadgate.samples` (the file the Locust master hands to `slo load`).
"""

"""SLO as code: Prometheus rules and their `promtool` tests, generated from `slos:`."""

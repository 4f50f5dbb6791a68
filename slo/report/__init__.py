"""Reporting a run: results folded from reports, the state file, the metrics and the push."""

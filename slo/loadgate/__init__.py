"""The Locust load gate: scenarios run in a subprocess, exact latencies, evidence-based verdict."""

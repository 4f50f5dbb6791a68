"""`slo run`: the probes on a schedule from one warm process, a forked child per run."""

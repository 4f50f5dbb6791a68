"""For development and demonstration only: the reference stack, local daemons and `make demo`.

Nothing in the product imports from here; tests, benchmarks and the demo do.
"""

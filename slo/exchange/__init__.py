"""One HTTP exchange within bounds: a deadline, DNS timed apart, a capped body, and a failure
classified into the closed `reason` vocabulary.

A leaf: probes, the push, the Prometheus client and the load gate all use it, and it imports
nothing of theirs.
"""

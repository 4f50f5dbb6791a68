"""Root conftest: kept thin on purpose.

The probe fixtures (`slo_config`, `targets`, `http`) and the reporting come from the `slo`
pytest plugin, registered through the package's `pytest11` entry point, so the probes work
the same from a checkout, an installed wheel or a container.
"""

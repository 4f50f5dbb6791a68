"""`slo init`: a new probe project from the templates beside this package (config, one example
probe per kind, the deploy snippets of the project's own `deploy/`, a three-line README)."""

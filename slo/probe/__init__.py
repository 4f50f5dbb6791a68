"""The probe runtime: the timed HTTP client, its failure vocabulary, expectations and checks."""

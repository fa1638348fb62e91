"""orca-local: the "local" and "spark-submit" cluster modes of Orca."""

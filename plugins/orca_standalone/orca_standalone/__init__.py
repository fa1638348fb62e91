"""orca-standalone: the "standalone" and "ray" cluster modes of Orca."""

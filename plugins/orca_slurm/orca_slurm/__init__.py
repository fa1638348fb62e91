"""orca-slurm: the "slurm" cluster mode of Orca."""

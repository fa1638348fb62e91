"""Drop-in APIs of the projects Orca succeeds: `orca_core.compat.bigdl` for BigDL 2.x Orca."""

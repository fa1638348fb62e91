"""Engines started from a LaunchPlan: Spark (a driver JVM) and Ray (local or on Spark)."""

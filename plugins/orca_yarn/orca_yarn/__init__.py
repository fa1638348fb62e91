"""orca-yarn: the "yarn-client" and "yarn-cluster" cluster modes of Orca."""

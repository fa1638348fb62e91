"""orca-k8s: the "k8s-client" and "k8s-cluster" cluster modes of Orca."""

"""orca-storage-disk: the "DISK_n" training data store of Orca."""

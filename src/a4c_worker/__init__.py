"""a4c_worker."""

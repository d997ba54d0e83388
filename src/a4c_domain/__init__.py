"""a4c_domain."""

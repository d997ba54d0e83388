"""a4c_projector."""

"""Moved to ``a4c_service.probes``; this alias stays until the projector imports it from there.

Remove it (and its ignore in pyproject.toml's import-linter contracts) once nothing
imports ``a4c_domain.probes``.
"""

from a4c_service.probes import *  # noqa: F403
from a4c_service.probes import __all__ as __all__

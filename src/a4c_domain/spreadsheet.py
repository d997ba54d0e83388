"""Moved to ``a4c_service.spreadsheet``; this alias stays until the projector imports it from there.

Remove it (and its ignore in pyproject.toml's import-linter contracts) once nothing
imports ``a4c_domain.spreadsheet``.
"""

from a4c_service.spreadsheet import *  # noqa: F403
from a4c_service.spreadsheet import __all__ as __all__

"""Which organization a caller acts for: one organization's id, or explicitly all.

Every invitation command and query takes an ``organization_id``. A caller acting for a
tenant passes that tenant's id, and an invitation of any other tenant is then exactly as
"not found" as an id nobody issued (same error type, same text), so the answer never
reveals that it exists elsewhere. ``ALL_ORGANIZATIONS`` is the deliberate choice of a
caller that acts for the platform itself (a workflow on the invitation it created, an
operator's tool); it is a Python object, so no input parsed from text (JSON, a form, a
command line) can turn into it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import Strict

from a4c_domain.errors import InvalidScope


class _Everyone(enum.Enum):
    ALL_ORGANIZATIONS = "all organizations"

    def __repr__(self) -> str:
        return "ALL_ORGANIZATIONS"


ALL_ORGANIZATIONS: Final = _Everyone.ALL_ORGANIZATIONS
AllOrganizations = Literal[_Everyone.ALL_ORGANIZATIONS]
OrganizationScope = UUID | AllOrganizations
# In a command model: a UUID (from any input) or the sentinel object itself (strict: the
# enum's value given as a string is refused, so text never widens a caller's scope).
ScopeField = UUID | Annotated[_Everyone, Strict()]


def in_scope(owner: UUID, scope: OrganizationScope) -> bool:
    """Whether something owned by organization ``owner`` is visible to ``scope``."""
    return checked(scope) is ALL_ORGANIZATIONS or owner == scope


def checked(scope: object) -> OrganizationScope:
    """``scope`` itself if it is one; else ``InvalidScope`` (``None``, a slug, a string)."""
    if isinstance(scope, UUID) or scope is ALL_ORGANIZATIONS:
        return scope
    raise InvalidScope(scope)

"""Who may do what to which organization (the ``/v1`` authorization rules).

- A platform operator (an operator's bearer token or API key) acts on any organization,
  and alone may onboard, cancel a bootstrap and list every organization.
- An organization's API key acts on its organization as its admins do.
- A person acts on an organization as the members read model says: its owners and
  admins read it and manage its invitations (invite, list, revoke, re-send) and list its
  members; its other members (member, viewer) may only read the organization itself.
- Offboarding an organization is for platform operators and its owners (not its admins,
  not its API key).
- Once an organization has ended (deactivated or offboarded), its API keys no longer
  authenticate (:mod:`a4c_api.auth`) and its members' rights in it end: every request
  of theirs on it is a 403 ``organization-inactive``; operators still read it.
- Any other organization is answered exactly as one that does not exist (404, same
  body): a caller learns nothing about organizations that are not theirs. A 403 is
  only ever given inside the caller's own organization.
"""

from __future__ import annotations

from enum import Enum
from uuid import UUID

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from a4c_api import context as api_app
from a4c_api.auth import Principal
from a4c_api.problems import ProblemError, from_domain, problem
from a4c_domain.commands import Slug
from a4c_domain.errors import OrganizationNotFound
from a4c_domain.ids import organization_id
from a4c_domain.organization import is_inactive

ADMIN_ROLES = frozenset({"owner", "admin"})
OWNER_ROLES = frozenset({"owner"})
_SLUG: TypeAdapter[str] = TypeAdapter(Slug)


class Action(Enum):
    READ = "read"  # see the organization (any member)
    ADMINISTER = "administer"  # invitations and members (owners, admins)
    OPERATE = "operate"  # onboard, cancel (platform operators)
    OFFBOARD = "offboard"  # end the organization (platform operators, its owners)


def not_found(slug: str) -> ProblemError:
    """The one answer for a missing organization and for one the caller may not see."""
    return from_domain(OrganizationNotFound(slug))


_WHO = {
    Action.OPERATE: "platform operators",
    Action.OFFBOARD: "platform operators and the organization's owners",
}


def forbidden(action: Action) -> ProblemError:
    who = _WHO.get(action, "the organization's owners and admins")
    return problem(403, f"only {who} may do this", kind="forbidden")


def ended(slug: str, status: str) -> ProblemError:
    """A member's request on an organization that has ended: their rights ended with it."""
    return problem(403, f"organization {slug!r} is {status}", kind="organization-inactive")


def require_operator(principal: Principal) -> None:
    if not principal.operator:
        raise forbidden(Action.OPERATE)


async def organization_for(
    request: Request, principal: Principal, slug: str, action: Action
) -> UUID:
    """The id of organization ``slug`` if ``principal`` may do ``action`` to it.

    The id follows from the slug, so this holds before the organization is in the read
    model (a bootstrap in progress). Whether it exists is the caller's next question.
    """
    try:
        valid = _SLUG.validate_python(slug)
    except ValidationError:
        raise not_found(slug) from None  # no organization can have it
    org_id = organization_id(valid)
    if principal.operator:
        return org_id
    if principal.organization_id is not None:  # an organization's API key
        if principal.organization_id != org_id:
            raise not_found(slug)
        if action in (Action.OPERATE, Action.OFFBOARD):
            raise forbidden(action)
        return org_id  # authenticated: its organization has not ended
    member, organization = await api_app.gateway_of(request).read(
        lambda rm: (rm.member(org_id, principal.subject), rm.organization(org_id))
    )
    if member is None:
        raise not_found(slug)
    if organization is not None and is_inactive(organization.status):
        raise ended(valid, organization.status)
    if action is Action.OPERATE:
        raise forbidden(action)
    if action is Action.ADMINISTER and member.role not in ADMIN_ROLES:
        raise forbidden(action)
    if action is Action.OFFBOARD and member.role not in OWNER_ROLES:
        raise forbidden(action)
    return org_id


async def may_see_emails(request: Request, principal: Principal, org_id: UUID) -> bool:
    """Whether addresses are shown in full: not to an organization's plain members."""
    if principal.operator or principal.organization_id is not None:
        return True
    member = await api_app.gateway_of(request).read(lambda rm: rm.member(org_id, principal.subject))
    return member is not None and member.role in ADMIN_ROLES

"""Who accepts an invitation, as their sign-in established it.

The pages' sign-ins name a person three ways: the platform's OpenID provider, an
organization's own provider (its single sign-on), or the development sign-in. The
domain keeps which one (``issuer``; None for the development sign-in, which proves
nothing) and the ``subject`` there on the acceptance, and checks the verified
``email`` against the invited address; the user id the rest of a4c knows the person by
is :func:`sso_user_id` for an organization's provider.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from a4c_domain.fields import Email, Identifier, IssuerURL

# Derives the user ids of people signed in through an organization's provider; fixed,
# so an id is the same on every replica and after restarts.
SSO_USER_NAMESPACE = uuid.UUID("5b0f3a52-7c1e-5d8a-9e44-a4c055011d01")
SSO_USER_PREFIX = "sso:"


class SignInIdentity(BaseModel):
    """The signed-in person: ``issuer`` (None: the development sign-in), ``subject`` at
    that issuer, and the address it vouched for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: IssuerURL | None = None
    subject: Identifier
    email: Email


def sso_user_id(issuer: str, subject: str) -> str:
    """The user id of ``subject`` at an organization's provider ``issuer``: one per
    (issuer, subject), apart from every other provider's subjects (an organization's
    provider could otherwise name a subject another provider's person has)."""
    return SSO_USER_PREFIX + str(uuid.uuid5(SSO_USER_NAMESPACE, f"{issuer}\n{subject}"))

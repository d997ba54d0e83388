"""``OnboardingApplication``: the library's entry point, one method per command.

Every command method takes typed keyword-only parameters (its command model's fields,
so mypy checks a caller), validates them first (``InvalidCommand`` naming every bad
field), then decides on the aggregate loaded by its deterministic id: new events, a
no-op (the same command again returns the same result) or a typed error. How a save
settles a race, and why the commands are split this way: docs/design/domain.md.
"""

from __future__ import annotations

from a4c_domain.application_base import DEFAULT_INVITATION_TTL as DEFAULT_INVITATION_TTL
from a4c_domain.application_base import INVITATION_TTL_VAR as INVITATION_TTL_VAR
from a4c_domain.application_base import MAX_INVITATION_TTL as MAX_INVITATION_TTL
from a4c_domain.application_base import Clock as Clock
from a4c_domain.invitation_commands import InvitationCommands
from a4c_domain.organization_commands import DNSRemoval as DNSRemoval
from a4c_domain.organization_commands import OrganizationCommands
from a4c_domain.sso_commands import SSOCommands
from a4c_domain.tokens import TOKEN_SECRET_VAR as TOKEN_SECRET_VAR
from a4c_domain.webhook_commands import WebhookCommands


class OnboardingApplication(OrganizationCommands, InvitationCommands, WebhookCommands, SSOCommands):
    """Organizations, invitations, webhook endpoints and single sign-on, event-sourced.

    ``env`` is the eventsourcing environment (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
    ``POSTGRES_*``, ``CIPHER_TOPIC``/``CIPHER_KEY``...; no ``POSTGRES_PASSWORD``: none,
    as with trust auth) plus ``A4C_TOKEN_SECRET`` (≥ 32 bytes; or pass ``token_secret``)
    and optionally ``A4C_INVITATION_TTL_SECONDS``. Configuration comes only from ``env``,
    never from ``os.environ``: entry points decide what the environment is.

    Invitation commands and queries take the ``organization_id`` the caller acts for:
    the invitation's organization, or ``ALL_ORGANIZATIONS``; for any other organization
    the invitation is ``InvitationNotFound``, as one never issued (a4c_domain.scope).
    Webhook endpoint commands take a ``scope`` the same way (a4c_domain.webhook_commands);
    single sign-on and e-mail domain commands the organization they act for
    (a4c_domain.sso_commands).
    """

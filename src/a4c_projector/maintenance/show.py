"""``a4c-projector show``: the read models as a table, JSON or CSV, for people and scripts.

Columns are an allow-list, not "every column": the token hash (and anything added to
the tables later) stays out of terminal scroll-back and CI logs unless listed here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from a4c_domain import ALL_ORGANIZATIONS
from a4c_projector.queries import InvitationRecord, MemberRecord, OrganizationRecord, ReadModel
from a4c_service.tabular import render_text

Kind = Literal["organizations", "invitations", "members"]
KINDS: tuple[Kind, ...] = ("organizations", "invitations", "members")
Format = Literal["table", "json", "csv"]

ORGANIZATION_FIELDS = (
    "slug", "name", "org_type", "status", "dns_status", "fqdn", "tags", "parent_id",
    "deactivation_reason", "failed_step", "registered_at", "activated_at", "deactivated_at",
    "version",
)  # fmt: skip
INVITATION_FIELDS = (
    "organization", "email", "role", "first_name", "last_name", "status", "email_status",
    "token_generation", "expires_at", "invited_at", "email_sent_at", "accepted_at",
    "accepted_by", "revoked_at", "expired_at", "version",
)  # fmt: skip
MEMBER_FIELDS = (
    "organization", "email", "role", "first_name", "last_name", "user_id", "joined_at",
    "version",
)  # fmt: skip


class UnknownOrganization(LookupError):
    """``--org`` names a slug the read model does not have."""


@dataclass(frozen=True)
class ShowFilter:
    tag: str | None = None
    status: str | None = None
    org: str | None = None  # slug


def collect(reads: ReadModel, kind: Kind, where: ShowFilter) -> list[dict[str, Any]]:
    """The rows to show, as field → value, in the order of the field lists above."""
    organizations = _organizations(reads, kind, where)
    if kind == "organizations":
        return [_pick(o.model_dump(), ORGANIZATION_FIELDS) for o in organizations]
    slugs = {o.id: o.slug for o in organizations}  # every one, unless filtered
    every_tenant = where.org is None and where.tag is None
    records: Sequence[InvitationRecord | MemberRecord]
    if kind == "members":  # members have no status of their own: --status is not theirs
        fields: Sequence[str] = MEMBER_FIELDS
        # The operator's view: every tenant, asked for explicitly.
        records = (
            reads.members(ALL_ORGANIZATIONS)
            if every_tenant
            else [m for o in organizations for m in reads.members(o.id)]
        )
    else:
        fields = INVITATION_FIELDS
        records = (
            reads.invitations(ALL_ORGANIZATIONS, status=where.status)
            if every_tenant
            else [i for o in organizations for i in reads.invitations(o.id, status=where.status)]
        )
    rows = []
    for record in records:
        data = record.model_dump()
        data["organization"] = slugs.get(record.organization_id, record.organization_id)
        rows.append(_pick(data, fields))
    return sorted(rows, key=lambda r: (str(r["organization"]), r["email"]))


def _organizations(reads: ReadModel, kind: Kind, where: ShowFilter) -> list[OrganizationRecord]:
    status = where.status if kind == "organizations" else None
    if where.org is None:
        return reads.organizations(status=status, tag=where.tag)
    found = reads.organization_by_slug(where.org)
    if found is None:
        raise UnknownOrganization(f"no organization with slug {where.org!r} in the read model")
    matches = (status is None or found.status == status) and (
        where.tag is None or where.tag in found.tags
    )
    return [found] if matches else []


def _pick(data: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {name: data[name] for name in fields}


def render(rows: list[dict[str, Any]], fields: Sequence[str], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps([{k: _json(v) for k, v in row.items()} for row in rows], indent=2)
    return render_text(fields, [[_text(row[name]) for name in fields] for row in rows], fmt)


def fields_of(kind: Kind) -> tuple[str, ...]:
    return {
        "organizations": ORGANIZATION_FIELDS,
        "invitations": INVITATION_FIELDS,
        "members": MEMBER_FIELDS,
    }[kind]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value

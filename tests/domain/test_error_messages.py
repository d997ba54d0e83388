"""Refusals read in the caller's terms: ``reason: must not be empty``, never pydantic's internals.

Pure logic (the command models alone), so no store is needed.
"""

from __future__ import annotations

import uuid

import pytest

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain import commands as c
from a4c_domain.errors import InvalidCommand, OrganizationNotFound


def refusal(model: type[c.Command], **fields: object) -> InvalidCommand:
    with pytest.raises(InvalidCommand) as caught:
        c.validate(model, **fields)
    return caught.value


def test_an_empty_or_blank_reason_must_not_be_empty() -> None:
    for reason in ("", "   "):
        error = refusal(
            c.RevokeInvitation,
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=uuid.uuid4(),
            reason=reason,
        )
        assert error.errors == [{"field": "reason", "message": "must not be empty"}]
        assert str(error) == "invalid RevokeInvitation: reason: must not be empty"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"slug": "Acme"}, "slug", "must be lower-case"),
        ({"slug": "www"}, "slug", "'www' is reserved"),
        ({"name": "x" * 201}, "name", "must have at most 200 characters"),
        ({"org_type": "vendor"}, "org_type", "must be 'provider' or 'partner'"),
        ({"colour": "red"}, "colour", "is not a field of this command"),
        ({"name": None}, "name", "must be a valid string"),
    ],
)
def test_field_errors_name_the_field_in_plain_words(
    fields: dict[str, object], field: str, message: str
) -> None:
    complete: dict[str, object] = {"name": "Acme", "slug": "acme", "org_type": "provider"}
    error = refusal(c.RegisterOrganization, **(complete | fields))
    assert {"field": field, "message": message} in error.errors, error.errors


def test_a_missing_field_is_required() -> None:
    error = refusal(c.RegisterOrganization, name="Acme", slug="acme")
    assert error.errors == [{"field": "org_type", "message": "is required"}]


def test_no_refusal_shows_pydantic_internals() -> None:
    cases: list[tuple[type[c.Command], dict[str, object]]] = [
        (c.RevokeInvitation, {"invitation_id": "not-a-uuid", "reason": "\x00"}),
        (c.Invite, {"organization_id": uuid.uuid4(), "email": "nope", "role": "boss",
                    "first_name": "", "last_name": "x", "generation": 0}),
        (c.AcceptInvitation, {"invitation_id": uuid.uuid4(), "token": "short", "user_id": ""}),
    ]  # fmt: skip
    for model, fields in cases:
        text = str(refusal(model, **fields))
        for internal in ("function-after", "constrained-str", "Value error,", "type=", "should"):
            assert internal not in text, text


def test_an_organization_looked_up_by_slug_is_named_by_its_slug() -> None:
    assert str(OrganizationNotFound("no-such-org")) == "organization 'no-such-org' not found"
    key = uuid.uuid4()
    assert str(OrganizationNotFound(key)) == f"organization {key} not found"

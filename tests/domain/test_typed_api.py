"""The library's command methods are typed: mypy checks a caller's keywords and types.

Other services import ``a4c_domain``; a misspelt keyword or a value of the wrong type
must show up when they type-check, not first in production. The method signatures
repeat their command models' fields (names, defaults, types): a test here proves they
agree, so the models stay the one definition of what a command takes.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, get_type_hints
from uuid import uuid4

import pytest
from mypy import api as mypy_api

from a4c_domain import OnboardingApplication
from a4c_domain.errors import InvalidCommand
from a4c_domain.signatures import COMMAND_MODELS

ROOT = Path(__file__).resolve().parents[2]

# Each call the checker must refuse ends in a marker comment naming what is wrong.
CALLER = """\
from uuid import UUID

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication


def caller(app: OnboardingApplication, org_id: UUID, inv_id: UUID) -> None:
    org = app.register_organization(name="Acme", slug="acme", org_type="provider", tags=["t"])
    app.invite(
        organization_id=org.id, email="a@example.com", role="admin", first_name="A", last_name="B"
    )
    app.revoke_invitation(organization_id=ALL_ORGANIZATIONS, invitation_id=inv_id, reason="r")
    app.accept_invitation(organization_id=org_id, invitation_id=inv_id, token="t", user_id="u")
    app.register_organization(nme="Acme", slug="acme", org_type="provider")  # WRONG KEYWORD
    app.activate(organization_id="acme")  # WRONG TYPE
    app.invite(organization_id=org_id, email="a@x.org", role="boss", first_name="A", last_name="B")  # WRONG ROLE
    app.expire_invitation(invitation_id=inv_id)  # NO SCOPE
"""  # noqa: E501

EXPECTED = {
    "WRONG KEYWORD": 'Unexpected keyword argument "nme" for "register_organization"',
    "WRONG TYPE": (
        # The class that defines the method: OnboardingApplication's mixin per aggregate.
        'Argument "organization_id" to "activate" of "OrganizationCommands" has incompatible '
        'type "str"; expected "UUID"'
    ),
    "WRONG ROLE": 'Argument "role" to "invite" of "InvitationCommands" has incompatible type',
    "NO SCOPE": 'Missing named argument "organization_id" for "expire_invitation"',
}


def test_mypy_reports_a_wrong_keyword_or_type_on_its_line(tmp_path: Path) -> None:
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER)
    stdout, stderr, _status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            str(caller),
        ]
    )
    assert stderr == ""
    errors: dict[int, list[str]] = {}
    for match in re.finditer(r"^.*caller\.py:(\d+): error: (.*)$", stdout, re.MULTILINE):
        errors.setdefault(int(match[1]), []).append(match[2])
    lines = CALLER.splitlines()
    expected_lines = {
        number: EXPECTED[marker]
        for number, line in enumerate(lines, start=1)
        for marker in EXPECTED
        if line.endswith(f"# {marker}")
    }
    # The correct calls above the markers type-check; each wrong one is named on its line.
    assert sorted(errors) == sorted(expected_lines), stdout
    for number, message in expected_lines.items():
        assert any(message in error for error in errors[number]), (number, errors[number])


COMMAND_METHODS = sorted(COMMAND_MODELS)
# Where a parameter's type differs from its field's, on purpose.
WIDER_OR_NARROWER = {
    # The field converts str to SecretStr; a caller passes the token as text (or wrapped).
    "token",
    # The field also takes the sentinel's enum type (checked strictly at run time); the
    # parameter is the public OrganizationScope.
    "organization_id",
}


def test_every_public_command_method_is_typed() -> None:
    # Its own methods and its mixins' (not eventsourcing's Application's).
    public = {
        name: member
        for cls in OnboardingApplication.__mro__
        if cls.__module__.startswith("a4c_domain.")
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }
    assert set(COMMAND_METHODS) <= set(public)
    for name, member in public.items():
        kinds = {p.kind for p in inspect.signature(member).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, name


@pytest.mark.parametrize("method", COMMAND_METHODS)
def test_method_signature_matches_its_command_model(method: str) -> None:
    model = COMMAND_MODELS[method]
    function = getattr(OnboardingApplication, method)
    parameters = dict(inspect.signature(function).parameters)
    parameters.pop("self")
    assert {p.kind for p in parameters.values()} == {inspect.Parameter.KEYWORD_ONLY}
    assert list(parameters) == list(model.model_fields)
    hints = get_type_hints(function, include_extras=True)
    field_hints = get_type_hints(model, include_extras=True)
    for name, parameter in parameters.items():
        field = model.model_fields[name]
        if field.is_required():
            assert parameter.default is inspect.Parameter.empty, name
        else:
            assert parameter.default == field.get_default(call_default_factory=True), name
        if name not in WIDER_OR_NARROWER:
            assert hints[name] == field_hints[name], name


def call_with(app: OnboardingApplication, method: str, fields: dict[str, Any]) -> Any:
    return getattr(app, method)(**fields)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"name": "Acme", "slug": "acme", "org_type": "provider", "nme": "x"}, ["nme"]),
        ({"name": "Acme", "org_type": "provider"}, ["slug"]),
        ({"name": "", "slug": "acme", "org_type": "provider", "x": 1}, ["name", "x"]),
    ],
)
def test_an_untyped_callers_keywords_are_refused_as_the_model_refuses_them(
    app: OnboardingApplication, fields: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(InvalidCommand) as info:
        call_with(app, "register_organization", fields)
    assert sorted(info.value.fields) == named
    assert info.value.command == "RegisterOrganization"


def test_a_positional_argument_stays_a_type_error(app: OnboardingApplication) -> None:
    # Fields are keywords; a value without its name is a programming error, not input.
    with pytest.raises(TypeError, match="positional"):
        app.activate(uuid4())  # type: ignore[misc]  # the positional call is the test


@pytest.mark.parametrize("value", ["not-a-uuid", 42, None])
def test_a_wrong_type_from_an_untyped_caller_is_still_invalid_command(
    app: OnboardingApplication, value: Any
) -> None:
    with pytest.raises(InvalidCommand) as info:
        call_with(app, "activate", {"organization_id": value})
    assert info.value.fields == ["organization_id"]


def test_text_the_model_converts_is_still_accepted(app: OnboardingApplication) -> None:
    org = app.register_organization(name="Acme", slug="acme", org_type="provider")
    view = call_with(app, "activate", {"organization_id": str(org.id)})  # as from JSON
    assert view.status == "active"

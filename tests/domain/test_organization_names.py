"""An organization's name reaches every mail about it (welcome, provisioning failed,
offboarded): a new registration takes only what such names are made of (letters, marks,
digits, spaces, ``-'.&,``), so no link, address or markup rides in it; names stored
before the rule still load (the projector and recorded histories keep them)."""

from __future__ import annotations

import pytest

from a4c_domain import OnboardingApplication, Organization
from a4c_domain.errors import InvalidCommand

HOSTILE = [
    "http://x",
    "Visit https://evil.example",
    "<a>",
    "<a href=x>Acme</a>",
    "evil.example",
    "Acme evil.com",
    "Acme 10.0.0.1",  # an address a mail client may make a link of
    "acme@evil.example",
    "Acme/Sons",
    "Acme: urgent",
    "123",  # no letter
    "evil\ua4f8com",  # a letter that looks like a dot
    "evil.\ufb01",  # NFKC: "evil.fi"
    "Acme\u00b2",  # a superscript digit is no decimal digit
]
NAMES = [
    "Acme",
    "Smith & Sons",
    "Smith & Sons, Ltd.",
    "3M",
    "7-Eleven",
    "O'Reilly Media",
    "Zoë's Café",
    "李小龍 Holdings",
    "Org dw-0-b6c78e",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_registration_refuses_a_name_that_is_not_a_name(
    app: OnboardingApplication, name: str
) -> None:
    with pytest.raises(InvalidCommand) as refused:
        app.register_organization(name=name, slug="acme", org_type="provider")
    assert refused.value.fields == ["name"]
    assert name not in str(refused.value)  # the refusal never echoes the input


@pytest.mark.parametrize("name", NAMES)
def test_registration_takes_names_as_organizations_write_them(
    app: OnboardingApplication, name: str
) -> None:
    assert app.register_organization(name=name, slug="acme", org_type="provider").name == name


def test_a_name_stored_before_the_rule_still_loads(app: OnboardingApplication) -> None:
    old = Organization(
        name="Old <b>Co</b> https://old.example", slug="old", org_type="partner",
        parent_id=None, tags=[], domain=None,
    )  # fmt: skip
    app.save(old)
    assert app.get_organization_by_slug("old").name == "Old <b>Co</b> https://old.example"

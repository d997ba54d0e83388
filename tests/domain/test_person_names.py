"""A person's name reaches the invitation mail's greeting: a new command takes only what
names are made of (letters, marks, spaces, ``-'.``), so no link or markup rides in it;
names stored before the rule still load (recorded workflow inputs with such names
still replay: tests/worker/test_replay_histories.py, whose invitees are "First0")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from a4c_domain import ALL_ORGANIZATIONS, Invitation, OnboardingApplication
from a4c_domain.errors import InvalidCommand
from tests.domain.support import org_fields

HOSTILE = [
    "Visit https://evil.example",
    "evil.example",
    "<b>Ada</b>",
    "Ada 2",
    "ada@evil.example",
    "-",
    "Ada\u00a0Lovelace",  # a no-break space: not a space a name is written with
    # Letters that look like a dot make a link a mail client shows as one.
    "evil\ua4f8com",
    "evil\ua78fcom",
    "evil\u318dcom",
    "evil\u1427com",
    "paypal\u02d1com",
    "paypal\u02cccom",
    "evil\u00b7com",
    # Compatibility letters NFKC (so IDNA) turns into a host name: "evil.fi", "paypal.dz".
    "evil.\ufb01",
    "paypal.\u01f3",
    "login.\ufb06",
    "evil.\u2170\u2170",  # small roman numerals: "evil.ii"
    "evil\uff0ecom",  # a fullwidth dot is a punctuation mark, refused like any
]
NAMES = [
    "Ada",
    "Zoë",
    "O'Brien-Smith",
    "J. R. R.",
    "Ngô Bảo Châu",
    "李小龍",
    "d\u2019Arc",
    "e\u0301mile",
    "\u0132sbrand",  # NFKC makes the Dutch ligature "IJ": still a name
]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_invite_refuses_a_name_that_is_not_a_name(
    app: OnboardingApplication, field: str, name: str
) -> None:
    org = app.register_organization(**org_fields())
    names = {"first_name": "Ada", "last_name": "Lovelace", field: name}
    with pytest.raises(InvalidCommand) as refused:
        app.invite(
            organization_id=org.id, email="ada@example.com", role="member",
            first_name=names["first_name"], last_name=names["last_name"],
        )  # fmt: skip
    assert refused.value.fields == [field]
    assert name not in str(refused.value)  # the refusal never echoes the input


@pytest.mark.parametrize("name", NAMES)
def test_invite_takes_names_as_people_write_them(app: OnboardingApplication, name: str) -> None:
    org = app.register_organization(**org_fields())
    view = app.invite(
        organization_id=org.id, email="ada@example.com", role="member",
        first_name=name, last_name=name,
    )  # fmt: skip
    assert (view.first_name, view.last_name) == (name, name)


def test_a_name_stored_before_the_rule_still_loads(app: OnboardingApplication) -> None:
    org = app.register_organization(**org_fields())
    inv_id = Invitation.create_id(org.id, "old@example.com", 1)
    app.save(
        Invitation(
            organization_id=org.id, email="old@example.com", role="member",
            first_name="Ada 2 <b>", last_name="https://old.example", generation=1,
            token_hash=app.tokens.token_hash(inv_id, 1),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    )  # fmt: skip
    loaded = app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert (loaded.first_name, loaded.last_name) == ("Ada 2 <b>", "https://old.example")

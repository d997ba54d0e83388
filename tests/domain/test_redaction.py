"""Provider error texts lose tokens and accept links before they become a record."""

from __future__ import annotations

from urllib.parse import quote
from uuid import UUID

import pytest

from a4c_domain import OnboardingApplication
from a4c_domain.errors import InvalidCommand
from a4c_domain.redaction import MAX_LENGTH, REDACTED, redact
from a4c_domain.tokens import TokenIssuer
from tests.domain.support import events, org_fields
from tests.support import TOKEN_SECRET

TOKEN = TokenIssuer(TOKEN_SECRET).token(UUID(int=7), 1)
URL = f"https://app.a4c.test/invitations/accept?token={TOKEN}"


@pytest.mark.parametrize(
    "quoted",
    [
        pytest.param(f"550 5.7.1 blocked URL {URL} in message", id="url"),
        pytest.param(f"550 5.7.1 blocked {quote(URL, safe='')}", id="url-percent-encoded"),
        pytest.param(f'550 href=3D"{URL.replace("=", "=3D")[:60]}=\n{URL[58:]}"', id="qp-split"),
        pytest.param(f"550 token {''.join(f'%{ord(c):02X}' for c in TOKEN)}", id="all-percent"),
        pytest.param(f"550 bad link: token={TOKEN[:20]} ", id="token-pair"),
        pytest.param(f"550 saw {TOKEN}", id="bare-token"),
        pytest.param(f"550 saw x{TOKEN}y", id="glued-token"),
    ],
)
def test_the_token_and_the_link_are_redacted_the_code_kept(quoted: str) -> None:
    text = redact(quoted)
    assert text.startswith("550 ") and REDACTED in text
    assert TOKEN[:20] not in text and "accept?token" not in text


def test_a_token_split_across_lines_is_redacted_when_known() -> None:
    text = redact(f"550-link: {TOKEN[:25]}\n550 {TOKEN[25:]} end", [TOKEN])
    assert text == f"550-link: {REDACTED} 550 {REDACTED} end"


def test_the_text_is_one_bounded_line_of_printable_characters() -> None:
    text = redact("451 " + "line\r\n\x00\u200b" * 500)
    assert MAX_LENGTH - 2 <= len(text) <= MAX_LENGTH and text.endswith("…")
    assert text.isprintable() and text.startswith("451 line line")
    assert redact("ordinary words stay: 550 5.1.1 no such user") == (
        "ordinary words stay: 550 5.1.1 no such user"
    )


def test_a_recorded_email_failure_holds_no_token_whatever_the_caller_passed(
    app: OnboardingApplication,
) -> None:
    """Defence in depth: even a caller that passes the raw reply records no token."""
    org = app.register_organization(**org_fields())
    inv = app.invite(
        organization_id=org.id, email="a@example.com", role="admin", first_name="A", last_name="B"
    )
    token = app.tokens.token(inv.id, 1)
    link = f"https://x.test/accept?token={token}"
    reply = f"550 5.7.1 rejected {link} {quote(link, safe='')} {token} token=3D{token}"
    failed = app.record_email_failed(
        organization_id=org.id, invitation_id=inv.id, token_generation=1, reason=reply
    )
    assert failed.email_error is not None and failed.email_error.startswith("550 5.7.1 rejected")
    stored = " ".join(str(vars(event)) for event in events(app))
    assert failed.email_error in stored
    assert token not in stored
    # Bounded as every reason: a longer one is refused, naming the field; nothing stored.
    with pytest.raises(InvalidCommand) as refused:
        app.record_email_failed(
            organization_id=org.id, invitation_id=inv.id, token_generation=1, reason="refused " * 70
        )
    assert refused.value.fields == ["reason"]

"""A plain member never reads a bounced invitee's address, and the worker never logs it.

An organization is onboarded through a worker whose mailer is real SMTP (aiosmtpd) that
refuses two invitees: one with a reply that does not name them, one with a reply that
quotes their address as Postfix does (``550 5.1.1 <ada@x>: Recipient address rejected``).
A third invitee accepts and becomes a plain member; every ``/v1`` answer that member can
get (each GET route, for the organization and each of its invitations) is searched for
the refused addresses, and so is every log record of the run. The reply code and the
server's own words stay, so an operator still learns why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from tests.api.conftest import LINK, Stack, stack_activities, unique_slug
from tests.api.v1_support import V1_ROUTES
from tests.servers.smtp import SMTPTestServer
from tests.worker.flows import bootstrap_input, smtp_mailer

from a4c_worker.client import accept_invitation, start_bootstrap
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.worker import create_worker

# aiosmtpd's own log is the remote server's record, not ours.
SERVER_LOGGERS = ("mail.log",)


def member_paths(slug: str, invitation_ids: list[str]) -> Iterator[str]:
    """Every GET path of /v1 for ``slug`` and its invitations."""
    for method, template in sorted(V1_ROUTES):
        if method != "get":
            continue
        if "{invitation_id}" in template:
            for invitation_id in invitation_ids:
                yield template.format(slug=slug, invitation_id=invitation_id)
        else:  # a webhook endpoint's {name}: a plain member reads none (403)
            yield template.format(slug=slug, name="any")


async def test_a_member_reads_no_refused_address_and_the_log_holds_none(
    api_stack: Stack, smtp_server: SMTPTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = api_stack
    slug = unique_slug("bounced")
    spec = bootstrap_input(slug, invitees=4, domain=False)
    # The first invitee is an admin, the others plain members.
    plain_refusal, member, quoting_refusal, filtered = (i.email for i in spec.invitees)
    smtp_server.reject(plain_refusal, "550 5.1.1 mailbox unavailable")
    smtp_server.reject(
        quoting_refusal, f"550 5.1.1 <{quoting_refusal.upper()}>: Recipient address rejected"
    )
    # A content filter refusing the message, quoting all of it (greeting and headers).
    smtp_server.reject_quoting(filtered, 554, one_line=True)
    activities = stack_activities(
        stack.app, smtp_mailer(smtp_server), stack.served.url(ACCEPT_PATH)
    )
    task_queue = f"a4c-bounced-{uuid.uuid4().hex[:10]}"
    async with create_worker(stack.client, task_queue, activities.all()):
        handle = await start_bootstrap(stack.client, spec, task_queue)
        result = await handle.result()
        [mail] = smtp_server.messages_to(member)
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        [link] = LINK.findall(body.get_content())
        user_id = f"user-member-{slug}"
        await accept_invitation(
            stack.client, stack.invitation(slug, member).id, stack.token_of(link), user_id
        )
        await stack.settle()

        refused = [plain_refusal, quoting_refusal, filtered]
        # The refusals happened and are on record, for the admins: the test can fail.
        invitations = [stack.invitation(slug, address) for address in refused]
        assert [i.email_status for i in invitations] == ["failed"] * 3
        assert any(filtered in reply for reply in smtp_server.handler.quoted_replies)
        greeting = spec.invitees[3].first_name, spec.invitees[3].last_name
        assert any(all(n in r for n in greeting) for r in smtp_server.handler.quoted_replies)
        audience = stack.settings.bearer_audience
        assert audience is not None
        token = stack.oidc.mint(user_id, None, audience=audience)
        answers: list[str] = []
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60.0) as client:
            for path in member_paths(slug, [str(i) for i in result.invitation_ids]):
                response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code in (200, 403), (path, response.text)
                answers.append(f"{path} {response.status_code} {response.text}")
                if path == f"/v1/organizations/{slug}":
                    errors = response.json()["progress"]["errors"]
        shown = "\n".join(answers).lower()
        for address in refused:
            assert address.lower() not in shown, (address, shown)
        for name in greeting:  # the quoted greeting named the refused invitee
            assert name.lower() not in shown, (name, shown)
        # The member does see the refusals, with the server's reply code and words.
        messages = sorted(e["message"] for e in errors)
        assert len(messages) == 3, messages
        assert sum("550 5.1.1" in m for m in messages) == 2, messages
        assert any("554 rejected by content filter" in m for m in messages), messages
        assert any("Recipient address rejected" in m for m in messages), messages
        # What the worker's log holds at its level (INFO; the SDK's DEBUG dumps payloads).
        ours = [
            r for r in caplog.records if r.name not in SERVER_LOGGERS and r.levelno >= logging.INFO
        ]
        logged = "\n".join(r.getMessage() for r in ours).lower()
        # The worker logged each refusal, by the recipient's domain.
        assert logged.count(f"mail to {slug}.example.com") >= 2, logged
        for secret in (*refused, *greeting):
            assert secret.lower() not in logged, secret

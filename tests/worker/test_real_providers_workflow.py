"""The bootstrap with real providers: RFC 2136 updates to BIND, mail through SMTP.

The organization's record must really resolve at BIND, and the invitation mail must
really arrive with a link whose token accepts the invitation.
"""

from __future__ import annotations

from pathlib import Path

import dns.asyncresolver
import dns.rdatatype
from temporalio.client import Client
from tests.servers.bind import BindServer
from tests.servers.smtp import SMTPTestServer
from tests.worker.flows import Flows, bootstrap_input, smtp_mailer, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS
from a4c_worker.activities import Links
from a4c_worker.client import accept_invitation, invitation_handle, start_bootstrap


async def resolve_cname(bind: BindServer, fqdn: str) -> list[str]:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [bind.host]
    resolver.port = bind.port
    answer = await resolver.resolve(fqdn, dns.rdatatype.CNAME)
    return [rr.to_text() for rr in answer]


async def test_bootstrap_publishes_real_dns_and_mails_a_working_token(
    tmp_path: Path,
    temporal_client: Client,
    task_queue: str,
    bind_server: BindServer,
    smtp_server: SMTPTestServer,
) -> None:
    zone = bind_server.zone.rstrip(".")
    app = sqlite_app(tmp_path)
    flows = Flows(
        app=app,
        client=temporal_client,
        task_queue=task_queue,
        links=Links(
            accept_url_base="https://app.a4c.test/invitations/accept",
            mail_domain="mail.a4c.test",
            dns_target="edge.a4c.test",
            zone=zone,
        ),
    )
    flows.use_bind(bind_server)
    flows.mailer = smtp_mailer(smtp_server)  # type: ignore[assignment]  # a real one in the double's slot
    spec = bootstrap_input("real-one", invitees=1, domain=False).model_copy(
        update={"domain": f"real-one.{zone}"}
    )
    try:
        async with flows.worker():
            handle = await start_bootstrap(flows.client, spec, flows.task_queue)
            result = await handle.result()

            assert await resolve_cname(bind_server, f"real-one.{zone}") == ["edge.a4c.test."]
            # The admin's invitation, then the welcome mail (no link).
            mail, welcome = smtp_server.messages_to("person0@real-one.example.com")
            assert str(welcome["Message-ID"]).strip().startswith("<welcome.")
            inv_id = result.invitation_ids[0]
            assert mail["Message-ID"] == f"<invitation.{inv_id}.1@mail.a4c.test>"
            body = mail.get_body(("plain",))
            assert body is not None
            link = next(w for w in body.get_content().split() if "?token=" in w)
            token = link.split("?token=", 1)[1]

            status = await accept_invitation(flows.client, inv_id, token, "user-real")
            final = await invitation_handle(flows.client, inv_id).result()
        assert status.state == final.state == "accepted"
        assert final.accepted_by == "user-real"
        assert app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "accepted"
        assert app.get_organization(result.organization_id).dns_status == "verified"
    finally:
        app.close()

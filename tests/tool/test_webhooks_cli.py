"""``a4c webhooks`` as a user types it: the installed console script, a subprocess, against
a served ``a4c-api`` on a whole stack of its own (Temporal's dev server, the worker, the
projector), the key in ``A4C_API_KEY``.

Every action on the platform's endpoints and on an organization's (``--organization``),
tables and ``--json``; the secret printed once with its warning and never by ``show``,
``list`` or an error; refusals in the API's words with exit code 1; no key, exit 2.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from a4c_api.cli import new_key
from a4c_tool.webhooks import API_KEY_VAR, NOT_SHOWN_AGAIN
from tests.api.conftest import running_stack, unique_slug
from tests.servers.oidc import OIDCProvider

A4C = str(Path(sys.executable).parent / "a4c")
# A public address the API need not resolve; nothing is delivered in this test.
URL = "https://93.184.215.14/hooks"


@dataclass(frozen=True)
class Served:
    api: str
    operator_key: str
    slug: str
    organization_key: str


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    oidc_provider: OIDCProvider,
) -> AsyncIterator[Served]:
    """A stack of its own with one organization, and an API with webhooks configured."""
    async with running_stack(
        tmp_path_factory.mktemp("webhooks-cli"), temporal_env, oidc_provider
    ) as stack:
        slug = unique_slug("cli-hooks")
        await stack.bootstrap(slug, invitees=1, domain=False)
        org_key, grant = new_key("cli-org", stack.organization_id(slug))
        keys = ",".join([*(g.entry() for g in stack.settings.api_keys), grant.entry()])
        webhook_keys = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
        with stack.serve(API_KEYS=keys, WEBHOOK_SECRET_KEYS=webhook_keys) as api:
            yield Served(api.base_url, stack.operator_key, slug, org_key)


async def a4c(served: Served, *args: str, key: str | None = None) -> Run:
    """``a4c webhooks ARGS --api <served>``, ``key`` (the operator's by default) in the
    environment; nothing else of ours is inherited."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    if key != "":
        env[API_KEY_VAR] = served.operator_key if key is None else key
    process = await asyncio.create_subprocess_exec(
        A4C,
        "webhooks",
        *args,
        "--api",
        served.api,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def secret_in(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("secret:")]
    secret = line.split()[1]
    assert secret.startswith("whsec_")
    return secret


async def test_the_platform_endpoints_through_every_action(served: Served) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = await a4c(served, "create", name, "--url", URL, "--description", "from the CLI")
    assert created.code == 0, created.err
    secret = secret_in(created.out)
    assert NOT_SHOWN_AGAIN in created.out
    assert "from the CLI" in created.out and "(platform)" in created.out

    again = await a4c(served, "create", name, "--url", URL, "--description", "from the CLI")
    assert again.code == 0, again.err
    assert "secret:" not in again.out and "not shown again" in again.out

    listed = await a4c(served, "list")
    assert listed.code == 0, listed.err
    header, rule, *rows = listed.out.splitlines()
    assert header.split() == ["name", "owner", "organization", "status", "events", "url"]
    assert set(rule) <= {"-", " "}
    [mine] = [r.split() for r in rows if r.startswith(name + " ")]
    assert mine == [name, "(platform)", "(every", "one)", "enabled", "(all)", URL]

    updated = await a4c(
        served,
        "update",
        name,
        "--event-type",
        "organization.activated",
        "--event-type",
        "invitation.accepted",
        "--only-organization",
        served.slug,
        "--json",
    )
    assert updated.code == 0, updated.err
    body = updated.json()
    assert body["event_types"] == ["invitation.accepted", "organization.activated"]
    assert body["organization"] == served.slug

    disabled = await a4c(served, "disable", name, "--reason", "maintenance")
    assert disabled.code == 0, disabled.err
    assert "disabled" in disabled.out and "maintenance" in disabled.out
    enabled = await a4c(served, "enable", name, "--json")
    assert enabled.json()["status"] == "enabled"

    rotated = await a4c(served, "rotate-secret", name, "--overlap", "60")
    assert rotated.code == 0, rotated.err
    new = secret_in(rotated.out)
    assert new != secret and NOT_SHOWN_AGAIN in rotated.out

    shown = await a4c(served, "show", name)
    assert shown.code == 0, shown.err
    assert "secret" not in shown.out
    assert secret not in shown.out and new not in shown.out

    deleted = await a4c(served, "delete", name)
    assert deleted.code == 0, deleted.err
    gone = await a4c(served, "show", name)
    assert gone.code == 1
    assert f"404 Not Found: webhook endpoint {name!r} not found" in gone.err
    assert name not in (await a4c(served, "list")).out


async def test_an_organization_manages_its_own(served: Served) -> None:
    name = f"own-{uuid.uuid4().hex[:8]}"
    mine = ("--organization", served.slug)
    key = served.organization_key
    created = await a4c(served, "create", name, "--url", URL, *mine, "--json", key=key)
    assert created.code == 0, created.err
    assert created.json()["secret"].startswith("whsec_")
    assert created.json()["owner"] == served.slug
    listed = await a4c(served, "list", *mine, "--json", key=key)
    assert {e["owner"] for e in listed.json()["webhook_endpoints"]} == {served.slug}
    assert name in {e["name"] for e in listed.json()["webhook_endpoints"]}
    assert "secret" not in listed.out

    platform = await a4c(served, "list", key=key)
    assert platform.code == 1
    assert "403 Forbidden: only platform operators may do this" in platform.err
    other = await a4c(served, "list", "--organization", unique_slug("other"), key=key)
    assert other.code == 1 and "404 Not Found: organization" in other.err


async def test_refusals_are_said_in_the_apis_words(served: Served) -> None:
    private = await a4c(served, "create", f"p-{uuid.uuid4().hex[:6]}", "--url", "https://10.0.0.1/")
    assert private.code == 1
    assert "422 Unprocessable Content" in private.err or "422 Unprocessable Entity" in private.err
    assert "  url: the address 10.0.0.1 is private" in private.err

    name = f"c-{uuid.uuid4().hex[:6]}"
    assert (await a4c(served, "create", name, "--url", URL)).code == 0
    conflict = await a4c(served, "create", name, "--url", URL + "/other")
    assert conflict.code == 1
    assert "409 Conflict" in conflict.err and "  differs: url" in conflict.err

    no_key = await a4c(served, "list", key="")
    assert no_key.code == 2
    assert API_KEY_VAR in no_key.err and no_key.out == ""
    wrong_key = await a4c(served, "list", key="a4c_not-a-key")
    assert wrong_key.code == 1 and "401" in wrong_key.err
    assert "a4c_not-a-key" not in wrong_key.err

"""Fuzzed bodies, paths and headers: always a 4xx problem+json, and nothing stored; and
Schemathesis holding every answer to the OpenAPI document.

Each strategy only produces requests that must be refused (a field is always wrong,
or the credential is), so any 2xx is a defect. The examples are few (the suite stays
fast) and run in a thread with a blocking client, so the session's event loop keeps
serving the worker meanwhile. Schemathesis runs as its command line does, in a process
of its own, against a stack of its own (it onboards and invites for real).
"""

from __future__ import annotations

import asyncio
import os
import string
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment
from tests.api.conftest import Stack, running_stack
from tests.api.schemathesis_hooks import PARENT_VARIABLE, SSO_ISSUER_VARIABLE
from tests.api.v1_support import Caller, World, organizations_of, quiet
from tests.servers.oidc import OIDCProvider, serve_provider

from a4c_api.problems import PROBLEM_JSON

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Never "provider" or "partner": every onboarding body below is invalid somewhere.
bad_org_type = st.one_of(
    st.text(max_size=20).filter(lambda t: t not in ("provider", "partner")),
    st.integers(),
    st.none(),
)
onboarding_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "name": st.one_of(st.text(max_size=300), st.integers()),
            "slug": st.one_of(st.text(max_size=70), st.integers()),
            "org_type": bad_org_type,
        },
        optional={
            "tags": json_values,
            "domain": json_values,
            "invitees": json_values,
            "parent_id": json_values,
            "timing": json_values,
            "extra": json_values,
        },
    ),
)
bad_emails = st.text(max_size=80).filter(lambda t: "@" not in t)
invite_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "email": st.one_of(bad_emails, st.integers(), st.none()),
            "role": st.one_of(st.text(max_size=10), st.none()),
            "first_name": json_values,
            "last_name": json_values,
        }
    ),
)
header_text = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=120).map(str.strip)


def _refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    body = response.json()
    assert body["status"] == response.status_code


async def _fuzz(world: World, run: Any) -> None:
    """Run the blocking hypothesis test ``run(client)``; the store must be unchanged."""
    head = await quiet(world.stack)

    def in_thread() -> None:
        with httpx.Client(base_url=world.base_url, timeout=30.0) as client:
            run(client)

    await asyncio.to_thread(in_thread)
    assert await quiet(world.stack) == head, "a refused request stored something"


async def test_fuzzed_onboarding_bodies_are_refused(world: World) -> None:
    headers = world.headers(Caller.OPERATOR_KEY)

    def run(client: httpx.Client) -> None:
        @EXAMPLES
        @given(body=onboarding_bodies)
        def check(body: Any) -> None:
            _refused(client.post("/v1/organizations", json=body, headers=headers))

        check()

    await _fuzz(world, run)


async def test_fuzzed_invitations_are_refused(world: World) -> None:
    orgs = world.orgs
    headers = world.headers(Caller.OPERATOR_KEY)
    count = world.stack.invitation_count()

    def run(client: httpx.Client) -> None:
        @EXAMPLES
        @given(body=invite_bodies, reason=json_values)
        def check(body: Any, reason: Any) -> None:
            _refused(
                client.post(f"/v1/organizations/{orgs.a}/invitations", json=body, headers=headers)
            )
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
                _refused(
                    client.post(
                        f"/v1/organizations/{orgs.a}/invitations/{orgs.pending_a}/revoke",
                        json={"reason": reason},
                        headers=headers,
                    )
                )

        check()

    await _fuzz(world, run)
    assert world.stack.invitation_count() == count


async def test_fuzzed_credentials_and_headers_are_refused(world: World) -> None:
    orgs = world.orgs

    def run(client: httpx.Client) -> None:
        @EXAMPLES
        @given(
            authorization=header_text,
            content_type=header_text,
            body=st.binary(max_size=200),
        )
        def check(authorization: str, content_type: str, body: bytes) -> None:
            headers = {"Authorization": authorization, "Content-Type": content_type}
            # No valid credential can come out of 120 printable characters at random.
            _refused(client.post("/v1/organizations", content=body, headers=headers))
            _refused(
                client.post(
                    f"/v1/organizations/{orgs.a}/invitations", content=body, headers=headers
                )
            )

        check()

    await _fuzz(world, run)


async def test_fuzzed_bodies_with_any_content_type_are_refused(world: World) -> None:
    """An operator's credential, but the body is random bytes under a random media type."""
    headers = world.headers(Caller.OPERATOR_KEY)
    slug = world.orgs.a

    def run(client: httpx.Client) -> None:
        @EXAMPLES
        @given(content_type=header_text, body=st.binary(max_size=300))
        def check(content_type: str, body: bytes) -> None:
            sent = {**headers, "Content-Type": content_type}
            _refused(client.post("/v1/organizations", content=body, headers=sent))
            _refused(client.post(f"/v1/organizations/{slug}/cancel", content=body, headers=sent))

        check()

    await _fuzz(world, run)


async def test_fuzzed_paths_and_queries_are_refused(world: World) -> None:
    headers = world.headers(Caller.OPERATOR_KEY)
    slug = world.orgs.a

    def run(client: httpx.Client) -> None:
        @EXAMPLES
        @given(
            segment=st.text(alphabet=string.ascii_letters + string.digits + "-_~", min_size=1),
            status=st.text(max_size=20).filter(
                lambda s: s not in ("pending", "accepted", "revoked", "expired")
            ),
        )
        def check(segment: str, status: str) -> None:
            _refused(client.get(f"/v1/organizations/{slug}/invitations/{segment}", headers=headers))
            _refused(
                client.get(
                    f"/v1/organizations/{slug}/invitations",
                    params={"status": status},
                    headers=headers,
                )
            )

        check()

    await _fuzz(world, run)


# --- the OpenAPI document as the contract -------------------------------------------------

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Bounded: a handful of examples per operation and phase keeps this well under a minute.
# One worker: Python 3.11's parser is not safe to use from several threads at once, which
# Hypothesis does when it describes a filter. ASCII text: Schemathesis reads the patterns'
# \p{...} classes through Latin-only approximations, exact on ASCII alone (the fuzzers
# above send any text).
SCHEMATHESIS_ARGS = (
    "--checks=all",
    "--phases=examples,coverage,fuzzing,stateful",
    "--max-examples=8",
    "--generation-deterministic",
    "--generation-codec=ascii",
    "--workers=1",
    "--request-timeout=30",
    "--no-color",
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    oidc_provider: OIDCProvider,
) -> AsyncIterator[Stack]:
    """A stack of its own: the tester onboards and invites for real, and what it leaves
    running (timers, mails) must not touch the other tests' store."""
    async with running_stack(
        tmp_path_factory.mktemp("contract-stack"), temporal_env, oidc_provider
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def sso_provider(own_stack: Stack) -> Iterator[OIDCProvider]:
    """An organization's own provider the tester's SSO configurations point at (a
    documented issuer it sends is replaced by this one: see the hooks); served after the
    stack, so stopping it restores the stack's log capture, not what came before it."""
    with serve_provider() as provider:
        yield provider


async def test_the_openapi_document_is_the_contract(
    own_stack: Stack, tmp_path: Path, sso_provider: OIDCProvider
) -> None:
    """Schemathesis, every check and every phase (stateful included), finds nothing: each
    answer is one the document lists, with the body, headers and media type it says, and
    every request the document allows is taken."""
    orgs = await organizations_of(own_stack)
    report = tmp_path / "schemathesis.txt"
    with report.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            own_stack.base_url + "/openapi.json",
            f"--header=Authorization: Bearer {own_stack.operator_key}",
            *SCHEMATHESIS_ARGS,
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
                PARENT_VARIABLE: str(orgs.a_id),
                SSO_ISSUER_VARIABLE: sso_provider.issuer,
            },
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
        await process.wait()
    assert process.returncode == 0, f"{report}:\n" + report.read_text()[-20_000:]

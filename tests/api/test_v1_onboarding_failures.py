"""An onboarding that cannot succeed: refused before anything starts when the API can
tell (a domain outside the DNS zone), its reason shown in ``progress`` when only the
workflow finds out, and retried with corrected input when it failed before registering
anything."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from tests.api.conftest import Stack, unique_slug
from tests.api.v1_support import (
    Caller,
    World,
    assert_problem,
    onboarding,
    wait_for_state,
)
from tests.worker.flows import ZONE

from a4c_api.v1.models import OnboardRequest
from a4c_worker.client import start_bootstrap
from a4c_worker.workflows.models import BootstrapInput

OUTSIDE_ZONE = "acme.orgs.example.com"


async def _failed_outside_zone(stack: Stack, slug: str) -> None:
    """A bootstrap that the register step refuses (started as an older API, or another
    client, could: past the API's own check), run to its end."""
    request = OnboardRequest.model_validate(onboarding(slug, domain=f"{slug}.{OUTSIDE_ZONE}"))
    spec = BootstrapInput.model_validate(request.bootstrap_fields())
    handle = await start_bootstrap(stack.client, spec, stack.task_queue)
    with pytest.raises(WorkflowFailureError):
        await handle.result()


async def test_a_domain_outside_the_zone_is_refused_before_anything_starts(world: World) -> None:
    slug = unique_slug("zone")
    async with world.client() as client:
        response = await client.post(
            "/v1/organizations",
            json=onboarding(slug, domain=f"{slug}.{OUTSIDE_ZONE}"),
            headers=world.headers(Caller.OPERATOR_KEY),
        )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["domain"]
    assert ZONE in body["errors"][0]["message"]
    assert await world.stack.never_bootstrapped(slug)


async def test_a_failed_step_shows_why_in_the_progress(world: World) -> None:
    slug = unique_slug("why")
    await _failed_outside_zone(world.stack, slug)
    headers = world.headers(Caller.OPERATOR_KEY)
    async with world.client() as client:
        body = await wait_for_state(world.stack, client, slug, headers, {"failed"})
    progress = body["progress"]
    assert progress["failed_step"] == "register"
    [error] = progress["errors"]
    assert error["step"] == "register"
    assert error["error_type"] == "DomainOutsideZone"
    assert ZONE in error["message"]


async def test_an_onboarding_that_failed_before_registering_can_be_retried(world: World) -> None:
    slug = unique_slug("retry")
    await _failed_outside_zone(world.stack, slug)
    headers = world.headers(Caller.OPERATOR_KEY)
    corrected = onboarding(slug, domain=f"{slug}.{ZONE}")
    async with world.client() as client:
        # The failed run is read (and its final progress kept) before the retry.
        await wait_for_state(world.stack, client, slug, headers, {"failed"})
        response = await client.post("/v1/organizations", json=corrected, headers=headers)
        assert response.status_code == 202, response.text
        done = await wait_for_state(world.stack, client, slug, headers, {"completed"})
        assert done["organization"]["fqdn"] == f"{slug}.{ZONE}"
        assert done["progress"]["errors"] == []
        # The retried onboarding is the one that counts now: the same request is 200.
        again = await client.post("/v1/organizations", json=corrected, headers=headers)
        assert again.status_code == 200, again.text


async def test_an_onboarding_that_registered_something_is_not_retried(world: World) -> None:
    """Cancelled after registering: the organization exists (deactivated), so another
    request for its slug is still a conflict."""
    slug = unique_slug("kept")
    headers = world.headers(Caller.OPERATOR_KEY)
    slow = onboarding(slug, domain=f"{slug}.{ZONE}")
    slow["timing"] = {**slow["timing"], "propagation_wait_seconds": 30}
    async with world.client() as client:
        started = await client.post("/v1/organizations", json=slow, headers=headers)
        assert started.status_code == 202, started.text
        progress: dict[str, Any] = {}
        while "register" not in progress.get("completed_steps", ()):
            await asyncio.sleep(0.05)
            progress = (await client.get(f"/v1/organizations/{slug}", headers=headers)).json()[
                "progress"
            ] or {}
        cancelled = await client.post(
            f"/v1/organizations/{slug}/cancel", json={"reason": "test"}, headers=headers
        )
        assert cancelled.status_code == 200, cancelled.text
        other = await client.post(
            "/v1/organizations", json=onboarding(slug, name="Another"), headers=headers
        )
    assert assert_problem(other, 409)["fields"] == ["domain", "name"]

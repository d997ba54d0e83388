"""Search attributes: one organization's workflows listed by a visibility query.

Real dev server (started with the attributes registered, as ``a4c dev`` does), real
worker: two organizations' bootstraps (each starting its invitation workflows) and an
invitation issued on its own, then ``OrganizationSlug = "<slug>"`` lists exactly the one
organization's. The dev server's visibility store catches up asynchronously, so the
listing is polled until it holds the expected workflows, then compared exactly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecution
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, Flows, bootstrap_input, sqlite_app
from tests.worker.histories import recorded_histories
from tests.worker.histories.contents import texts

from a4c_domain.ids import organization_id
from a4c_worker.client import invite, start_bootstrap
from a4c_worker.contracts import Invitee
from a4c_worker.search_attributes import (
    ORGANIZATION_ID,
    ORGANIZATION_SLUG,
    ORGANIZATION_TAGS,
    SEARCH_ATTRIBUTES,
    create_commands,
    dev_server_args,
    organization_query,
)
from a4c_worker.workflows.models import bootstrap_workflow_id

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# The operator's page says how to register them ("Finding an organization's workflows").
README = Path(__file__).parents[2] / "docs" / "operating.md"


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


async def listed(client: Client, query: str) -> list[WorkflowExecution]:
    return [execution async for execution in client.list_workflows(query)]


async def test_a_visibility_query_lists_one_organizations_workflows(flows: Flows) -> None:
    run = uuid.uuid4().hex[:8]  # the dev server is shared by the session's tests
    acme, globex = f"acme-{run}", f"globex-{run}"
    tag = f"beta-{run}"
    expected: set[str] = set()
    async with flows.worker():
        for slug, tags in ((acme, [tag, "eu"]), (globex, ["eu"])):
            spec = bootstrap_input(slug, domain=False, tags=tags)
            result = await (await start_bootstrap(flows.client, spec, flows.task_queue)).result()
            if slug == acme:
                expected |= {bootstrap_workflow_id(slug), *result.invitation_workflow_ids}
        org = flows.app.get_organization(organization_id(acme))
        issued = await invite(
            flows.client,
            organization_id=org.id,
            organization_name=org.name,
            invitee=Invitee(
                email=f"late@{acme}.example.com", role="member", first_name="La", last_name="Te"
            ),
            task_queue=flows.task_queue,
            organization_slug=org.slug,
            organization_tags=org.tags,
            activities=FAST_STEPS,
        )
    expected.add(f"invitation-{issued.invitation_id}")
    query = organization_query(acme)

    async def all_listed() -> bool:
        return expected <= {w.id for w in await listed(flows.client, query)}

    await wait_for_async(all_listed, seconds=20, what=f"visibility to list {query}")
    executions = await listed(flows.client, query)
    assert {w.id for w in executions} == expected  # 1 bootstrap, 2 + 1 invitations
    for execution in executions:
        attributes = execution.typed_search_attributes
        assert attributes.get(ORGANIZATION_SLUG) == acme
        assert attributes.get(ORGANIZATION_ID) == str(org.id)
        assert sorted(attributes.get(ORGANIZATION_TAGS) or []) == sorted([tag, "eu"])
    # The other attributes select the same workflows.
    by_id = await listed(flows.client, f'{ORGANIZATION_ID.name} = "{org.id}"')
    by_tag = await listed(flows.client, f'{ORGANIZATION_TAGS.name} = "{tag}"')
    assert {w.id for w in by_id} == {w.id for w in by_tag} == expected
    print(f"{query}:", *sorted(f"{w.workflow_type} {w.id}" for w in executions), sep="\n  ")


async def test_no_started_workflow_has_an_address_in_its_search_attributes(
    flows: Flows,
) -> None:
    """Every workflow the session's tests started so far, this test's own among them."""
    slug = f"scan-{uuid.uuid4().hex[:8]}"
    async with flows.worker():
        spec = bootstrap_input(slug, domain=False)
        await (await start_bootstrap(flows.client, spec, flows.task_queue)).result()

    async def own_listed() -> bool:
        return len(await listed(flows.client, organization_query(slug))) == 3

    await wait_for_async(own_listed, seconds=20, what=f"visibility to list {slug}")
    scanned: set[str] = set()
    async for execution in flows.client.list_workflows():
        for pair in execution.typed_search_attributes:
            values = pair.value if isinstance(pair.value, list) else [pair.value]
            assert not any(ADDRESS.search(str(v)) for v in values), (execution.id, pair)
            scanned.add(execution.id)
    assert bootstrap_workflow_id(slug) in scanned  # the scan saw attributes


def search_attribute_texts(history_json: str) -> list[str]:
    """Every decoded search attribute value in a recorded history (start, child start,
    upsert, continue-as-new)."""
    return [text.text for text in texts(history_json) if ".searchAttributes." in text.where]


@pytest.mark.parametrize("name", sorted(recorded_histories()))
def test_no_recorded_search_attribute_is_an_address(name: str) -> None:
    path = recorded_histories()[name]
    for value in search_attribute_texts(path.read_text()):
        assert not ADDRESS.search(value), (name, value)


def test_the_recorded_histories_carry_the_attributes_since_0_4_0() -> None:
    """Guards the scan above: it reads the attributes where they are recorded."""
    happy = recorded_histories()["v0.4.0/bootstrap_happy"].read_text()
    found = " ".join(search_attribute_texts(happy))
    assert '"history-happy"' in found  # its own start and its invitations' child starts
    assert str(organization_id("history-happy")) in found
    children = [
        text
        for text in texts(happy)
        if text.where.startswith(".startChildWorkflowExecutionInitiatedEventAttributes")
        and text.where.endswith(".searchAttributes.indexedFields.OrganizationSlug.data")
    ]
    assert len(children) == 2  # both invitations' workflows, labelled by the bootstrap
    # A run that continued as new keeps its first run's attributes.
    run2 = recorded_histories()["v0.4.0/invitation_continued_as_new_run2"].read_text()
    assert '"history-long"' in search_attribute_texts(run2)


def test_the_dev_servers_register_every_attribute_and_the_readme_says_how() -> None:
    args = dev_server_args()
    assert args[::2] == ["--search-attribute"] * len(SEARCH_ATTRIBUTES)
    assert args[1::2] == [
        "OrganizationId=Keyword",
        "OrganizationSlug=Keyword",
        "OrganizationTags=KeywordList",
    ]
    readme = README.read_text()
    for command in create_commands():
        assert command in readme, command

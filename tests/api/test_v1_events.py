"""``GET /v1/events`` against the running service: the cursor, paging, filters,
``range_start``, tenants and bad parameters.

What the API answers is compared with the event store itself (every notification whose
event class has a public form, by its deterministic id), never with the read model the
API reads. The no-skip guarantee under concurrent writers is
tests/api/test_v1_events_no_skip.py.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.api.conftest import unique_slug
from tests.api.events_support import Event, follow, ids, public_ids, query, same_then_newer
from tests.api.v1_support import (
    ADM_A,
    ADM_B,
    ANON,
    KEY_A,
    MEM_A,
    OP,
    OPK,
    World,
    assert_problem,
    not_found_body,
    quiet,
)

from a4c_api.v1.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor, parse_time

# --- the cursor (no servers) -------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_a_cursor_holds_any_position(position: int) -> None:
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert base64.urlsafe_b64decode(cursor + "==").decode() == f"v1:{position}"


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_string_the_document_allows_is_a_cursor(cursor: str) -> None:
    """The OpenAPI pattern is exactly what decodes: a client the document allows is
    never refused (Schemathesis holds the service to it)."""
    assert 0 <= decode_cursor(cursor) < 10**18


@given(st.binary(max_size=30))
def test_anything_else_is_refused(raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    text = raw.decode("latin-1")
    if text.startswith("v1:") and text[3:].isdigit() and len(text) <= 21:
        return
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(cursor)
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(cursor + "==")  # padded: not a form this API gives


def test_range_start_is_rfc3339_with_an_offset() -> None:
    assert (
        parse_time("2026-12-07T08:00:00.5+01:00").isoformat() == "2026-12-07T07:00:00.500000+00:00"
    )
    assert parse_time("2026-12-07t08:00:60z").second == 59  # a leap second
    for bad in ("2026-12-07", "2026-12-07T08:00:00", "1765094400", "2026-13-07T08:00:00Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


# --- against the stack --------------------------------------------------------------------


@pytest.fixture
async def everything(world: World) -> list[Event]:
    """Every public event, as an operator following the cursor gets them, once the store
    is quiet and projected; checked against the store."""
    await quiet(world.stack)
    await world.stack.settle()
    async with world.client() as client:
        events, last = await follow(client, world.headers(OP), limit=100)
    served_up_to = decode_cursor(last)
    assert ids(events) == [i for p, i in public_ids(world.stack.app) if p <= served_up_to]
    return events


async def test_following_the_cursor_gives_every_event_once_in_order(
    world: World, everything: list[Event]
) -> None:
    assert len(set(ids(everything))) == len(everything)
    a_id = str(world.orgs.a_id)
    theirs = [e for e in everything if e["organization"]["id"] == a_id]
    assert {e["type"] for e in theirs} >= {
        "organization.registered",
        "organization.activated",
        "invitation.invited",
        "invitation.email_sent",
        "invitation.accepted",
    }
    assert all(e["organization"]["slug"] == world.orgs.a for e in theirs)
    async with world.client() as client:
        # Small pages: the same events, each once, has_more on all but the last page.
        paged, last = await follow(client, world.headers(OP), organization=world.orgs.a, limit=3)
        same_then_newer(paged, theirs, everything)
        # After the end: nothing seen before, and a cursor no earlier than the one given.
        response = await client.get(
            query(after=last, organization=world.orgs.a), headers=world.headers(OP)
        )
        assert not {e["id"] for e in response.json()["data"]} & {e["id"] for e in everything}
        assert decode_cursor(response.json()["next"]) >= decode_cursor(last)
    # A subject's versions only grow along the feed (what a consumer discards by).
    latest: dict[str, int] = {}
    for e in everything:
        subject = e["subject"]
        assert subject["version"] > latest.get(subject["id"], 0), e
        latest[subject["id"]] = subject["version"]


async def test_filters_are_the_feed_filtered(world: World, everything: list[Event]) -> None:
    headers = world.headers(OP)
    wanted = {"invitation.accepted", "organization.activated"}
    async with world.client() as client:
        by_type, _ = await follow(client, headers, types=",".join(sorted(wanted)), limit=100)
        by_org, _ = await follow(client, headers, organization=world.orgs.b, limit=100)
        both, _ = await follow(
            client, headers, organization=world.orgs.a, types="invitation.accepted"
        )
    same_then_newer(by_type, [e for e in everything if e["type"] in wanted], everything)
    assert all(e["type"] in wanted for e in by_type)
    same_then_newer(
        by_org, [e for e in everything if e["organization"]["slug"] == world.orgs.b], everything
    )
    assert all(e["organization"]["slug"] == world.orgs.b for e in by_org)
    a_accepted = [
        e
        for e in everything
        if e["organization"]["slug"] == world.orgs.a and e["type"] == "invitation.accepted"
    ]
    assert len(a_accepted) >= 2  # A's admin and plain member (other tests may add more)
    same_then_newer(both, a_accepted, everything)


async def test_range_start_starts_at_the_first_event_at_or_after_it(
    world: World, everything: list[Event]
) -> None:
    middle = everything[len(everything) // 2]["occurred_at"]
    start = min(i for i, e in enumerate(everything) if e["occurred_at"] >= middle)
    async with world.client() as client:
        response = await client.get(query(range_start=middle, limit=5), headers=world.headers(OP))
        assert response.json()["data"] == everything[start : start + 5]
        # With a cursor, the cursor wins.
        cursor = encode_cursor(0)
        response = await client.get(
            query(after=cursor, range_start=middle, limit=5), headers=world.headers(OP)
        )
        assert response.json()["data"] == everything[:5]
        # After every event: an empty page, its cursor past every event there is.
        response = await client.get(
            query(range_start="9999-01-01T00:00:00Z"), headers=world.headers(OP)
        )
        assert response.json()["data"] == []
        last = public_ids(world.stack.app)[-1][0]
        assert decode_cursor(response.json()["next"]) >= last


async def test_each_caller_sees_only_its_organizations_events(
    world: World, everything: list[Event]
) -> None:
    orgs = world.orgs
    mine = {
        OP: everything,
        OPK: everything,
        KEY_A: [e for e in everything if e["organization"]["slug"] == orgs.a],
        ADM_A: [e for e in everything if e["organization"]["slug"] == orgs.a],
        ADM_B: [e for e in everything if e["organization"]["slug"] == orgs.b],
    }
    async with world.client() as client:
        for caller, expected in mine.items():
            found, _ = await follow(client, world.headers(caller), limit=100)
            same_then_newer(found, expected, everything)
            if caller in (KEY_A, ADM_A, ADM_B):  # never another tenant's, new or old
                slug = orgs.b if caller is ADM_B else orgs.a
                assert {e["organization"]["slug"] for e in found} == {slug}, caller
        # Naming another tenant: exactly the answer for an organization that does not exist.
        for caller, other in ((KEY_A, orgs.b), (ADM_A, orgs.b), (ADM_B, orgs.a)):
            response = await client.get(query(organization=other), headers=world.headers(caller))
            assert_problem(response, 404)
            assert response.json() == not_found_body(other), caller
        missing = unique_slug("missing")
        response = await client.get(query(organization=missing), headers=world.headers(OP))
        assert response.json() == not_found_body(missing)
        # A plain member reads no events (addresses are in them); nobody anonymous does.
        for path in (query(), query(organization=orgs.a)):
            body = assert_problem(await client.get(path, headers=world.headers(MEM_A)), 403)
            assert body["type"] == "urn:a4c:problem:forbidden"
        assert_problem(await client.get(query(), headers=world.headers(ANON)), 401)


async def test_a_person_administering_two_organizations_reads_both(world: World) -> None:
    """Their feed merges the two, in order, page boundaries anywhere; one of them by name."""
    stack = world.stack
    first, second = unique_slug("two-a"), unique_slug("two-b")
    user = f"user-{first}"
    for slug in (first, second):
        await stack.bootstrap(slug, invitees=1, domain=False)  # person0 is its owner
        await stack.make_member(slug, f"person0@{slug}.example.com", user)
    person = {"Authorization": f"Bearer {world.token(user)}"}
    async with world.client() as client:
        everything, _ = await follow(client, world.headers(OP), limit=100)
        theirs = [e for e in everything if e["organization"]["slug"] in (first, second)]
        assert {e["organization"]["slug"] for e in theirs} == {first, second}
        merged, _ = await follow(client, person, limit=2)
        one, _ = await follow(client, person, organization=second, limit=100)
    same_then_newer(merged, theirs, everything)
    same_then_newer(one, [e for e in theirs if e["organization"]["slug"] == second], everything)
    assert {e["organization"]["slug"] for e in merged} == {first, second}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor"}, "query.after"),
        ({"after": encode_cursor(3) + "=="}, "query.after"),
        ({"after": base64.urlsafe_b64encode(b"v2:3").decode()}, "query.after"),
        ({"types": "organization.activated,organization.exploded"}, "query.types"),
        ({"types": ""}, "query.types"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"range_start": "yesterday"}, "query.range_start"),
        ({"range_start": "2026-12-07T08:00:00"}, "query.range_start"),
    ],
)
async def test_a_bad_parameter_is_a_problem_naming_it(
    world: World, params: dict[str, Any], field: str
) -> None:
    async with world.client() as client:
        response = await client.get(query(**params), headers=world.headers(OP))
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == [field]
    if "exploded" in str(params):
        assert "'organization.exploded'" in body["errors"][0]["message"]
        assert "'organization.activated'" not in body["errors"][0]["message"]


async def test_an_empty_page_moves_the_cursor_and_misses_nothing(world: World) -> None:
    """A consumer of a rare type gets an empty page whose cursor is past what it has
    already looked at; the next such event still comes after it."""
    stack = world.stack
    slug = unique_slug("events")
    await stack.bootstrap(slug, invitees=1, domain=False)
    headers = world.headers(OP)
    rare = {"organization": slug, "types": "invitation.revoked"}
    with stack.read_model() as rm:
        projected = rm.position()  # the bootstrap's events included (bootstrap settles)
    async with world.client() as client:
        response = await client.get(query(**rare), headers=headers)
        page = response.json()
        assert page["data"] == [] and not page["has_more"]
        assert decode_cursor(page["next"]) >= projected
        invitation = stack.invitation(slug, f"person0@{slug}.example.com")
        revoked = await client.post(
            f"/v1/organizations/{slug}/invitations/{invitation.id}/revoke",
            json={"reason": "events test"},
            headers=headers,
        )
        assert revoked.status_code == 200, revoked.text
        await stack.settle()
        found, _ = await follow(client, headers, after=page["next"], **rare)
    assert [(e["type"], e["subject"]["id"]) for e in found] == [
        ("invitation.revoked", str(invitation.id))
    ]
    assert found[0]["data"] == {"reason": "events test"}

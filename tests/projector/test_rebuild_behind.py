"""A rebuild goes as far as the live projection has: when that is behind the event store
(a projection never tailed, a stopped daemon), ``a4c-projector rebuild`` says so rather
than reporting a bare ``swapped: true, events: 0``."""

from __future__ import annotations

import json

from a4c_projector.maintenance.rebuild import rebuild
from tests.projector.conftest import Store, run_cli, seed, store_head, tracked_position


def test_rebuilding_a_projection_never_tailed_says_it_is_behind(any_store: Store) -> None:
    seed(any_store.app, 2)
    events = store_head(any_store)
    assert events > 0 and tracked_position(any_store) == 0  # no projector has run

    code, out, err = run_cli(any_store.env, "rebuild", "--no-progress")

    assert code == 0, err
    report = json.loads(out)
    assert (report["swapped"], report["position"], report["events"]) == (True, 0, 0)
    assert (report["head"], report["behind"]) == (events, events)
    assert report["warning"] == (
        f"the live projection 'a4c' is {events} events behind the event store (position 0 "
        f"of {events}): the rebuild went only as far as it; run the projector "
        "(a4c-projector run) to apply the rest"
    )
    assert "behind" in err  # said where an operator watching the terminal sees it too


def test_a_projection_at_the_head_is_not_behind(any_store: Store) -> None:
    seed(any_store.app, 1)
    projector = any_store.projector()
    projector.catch_up()
    projector.close()

    report = rebuild(any_store.location, any_store.store.mapper)

    assert report.swapped and report.position == report.head == store_head(any_store)
    assert report.behind == 0

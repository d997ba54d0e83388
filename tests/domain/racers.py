"""Child-process side of the race tests: run a plan of commands in lockstep with a rival.

Lives in its own module so ``spawn``ed processes can import it. Each step waits on a
shared barrier, then issues one command; the outcome (position or error class) and the
number of lost saves (the store's uniqueness refused our write) go back on a queue.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError

from a4c_domain import OnboardingApplication
from a4c_domain.errors import A4CError
from tests.support import TOKEN_SECRET

Step = tuple[str, dict[str, Any]]
Outcome = tuple[str, int | None]  # ("ok", position) or (error class name, None)


def run_plan(index: int, env: dict[str, str], plan: list[Step], barrier: Any, results: Any) -> None:
    lost_saves = 0
    outcomes: list[Outcome] = []
    failure: str | None = None
    try:
        barrier.wait(timeout=60)  # start together: concurrent start-up is part of the race
        app = OnboardingApplication({**env, "A4C_TOKEN_SECRET": TOKEN_SECRET})
        real_save = app.save

        def counting_save(*aggregates: Any, **kwargs: Any) -> Any:
            nonlocal lost_saves
            try:
                return real_save(*aggregates, **kwargs)
            except IntegrityError:
                lost_saves += 1
                raise

        app.save = counting_save  # type: ignore[method-assign]  # a spy counting saves
        try:
            for method, fields in plan:
                barrier.wait(timeout=60)
                try:
                    view = getattr(app, method)(**fields)
                    outcomes.append(("ok", view.position))
                except A4CError as exc:
                    outcomes.append((type(exc).__name__, None))
        finally:
            app.close()
    except BaseException as exc:  # report, never leave the parent waiting
        barrier.abort()
        failure = f"{type(exc).__name__}: {exc}"
    results.put((index, outcomes, lost_saves, failure))

"""An exhaustive model of the projector's gap rule, with writers and two replicas.

Every interleaving of a small configuration is explored breadth first, each state
hashed once. The rule itself is not transcribed: each replica drives the real
:class:`a4c_projector.eventlog.guard.GapGuard` (rebuilt from the state, stepped, frozen
back), so the check covers the code. Which step stands for which code step:
docs/design/no-skip-guard.md ("The model").

Properties checked in every reachable state: no id the checkpoint moved past without its
row ever commits; the checkpoint only moves forward; at most one replica is inside a
batch transaction (between claiming the tracking row and committing).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from a4c_projector.eventlog.guard import Fence, FetchedRow, GapGuard, GapState

# first_seen stands for a gap's age: the model calls the guard at ``NOW``; a gap first seen
# then is within its grace, one aged (its grace ran out) is past it.
GRACE = 1.0
NOW = 0.0
AGED = NOW - GRACE

# Writer phases.
IDLE, DRAWN, INSERTED, COMMITTED, ROLLED_BACK = (
    "idle",
    "drawn",
    "inserted",
    "committed",
    "rolled back",
)
# Replica batch phases (a batch transaction is open in all but IDLE).
CLAIMED, OBSERVED, FETCHED, JUDGED = "claimed", "observed", "fetched", "judged"


class Writer(NamedTuple):
    phase: str = IDLE
    id: int | None = None  # the notification id drawn
    xid: int | None = None
    prepared: bool = False


# A gap state, frozen: (start, first_seen, fence xid, fence writers, writers_gone).
FrozenGap = tuple[int, float, int | None, tuple[str, ...] | None, bool]


class Replica(NamedTuple):
    active: bool = False  # believes it holds the projection lock (may be a zombie)
    guard: tuple[FrozenGap, ...] = ()
    phase: str = IDLE
    start: int = 0  # the position its batch claimed
    xid: int | None = None  # its batch transaction's xid (FOR UPDATE assigns one)
    rows: tuple[tuple[int, int], ...] = ()  # the fetch's snapshot: (id, xid)
    horizon: int | None = None
    target: int = 0  # the position its batch moves to


class State(NamedTuple):
    writers: tuple[Writer, ...]
    replicas: tuple[Replica, ...]
    next_id: int = 1
    next_xid: int = 1
    checkpoint: int = 0
    lock_owner: int | None = None  # the advisory lock's session holder
    row_lock: int | None = None  # the tracking row's FOR UPDATE holder
    passed: frozenset[int] = frozenset()  # ids the checkpoint moved past without a row
    faults: int = 0  # lease expiries and crashes left
    moved_back: bool = False
    zombie_advanced: bool = False  # an advance committed by a replica without the lock


@dataclass(frozen=True)
class Config:
    writers: int = 3
    replicas: int = 2
    faults: int = 1  # lease expiries (lock session cut, replica unaware) or crashes
    kills: bool = True  # a fault may also be a SIGKILL of a replica (else only expiries)
    xid_at_draw: bool = True  # nextval may WAL-log and so assign an xid (1 draw in 32)
    prepared: bool = False  # a writer may PREPARE TRANSACTION (its locks then "-1/<xid>")
    # Off: the rule before the fix, blind to prepared transactions (a counterexample).
    observe_prepared: bool = True
    tracking_row_lock: bool = True  # claim_position: SELECT ... FOR UPDATE
    compare_and_set: bool = True  # advance_position: ... WHERE position = old
    check_one_at_a_time: bool = True  # off: to see what else goes wrong without the locks
    guard: type[GapGuard] = GapGuard


class Violation(NamedTuple):
    name: str
    trace: list[str]


@dataclass
class Result:
    states: int
    transitions: int
    violation: Violation | None
    zombie_advance: list[str] | None  # a trace where a replica without the lock advanced


# --- the guard, frozen and thawed ---------------------------------------------------------


def thaw(frozen: tuple[FrozenGap, ...], kind: type[GapGuard]) -> GapGuard:
    gaps = {}
    for start, first_seen, fence_xid, writers, gone in frozen:
        fence = None
        if fence_xid is not None:
            fence = Fence(fence_xid, None if writers is None else frozenset(writers))
        gaps[start] = GapState(first_seen, fence, gone)
    return kind(grace=GRACE, gaps=gaps)


def freeze(guard: GapGuard) -> tuple[FrozenGap, ...]:
    return tuple(
        (
            start,
            s.first_seen,
            None if s.fence is None else s.fence.xid,
            None if s.fence is None or s.fence.writers is None else tuple(sorted(s.fence.writers)),
            s.writers_gone,
        )
        for start, s in sorted(guard.gaps.items())
    )


class HorizonOnlyGuard(GapGuard):
    """The rule of 0.2.0: a gap passes once the xid horizon is past the fence's xid, and
    each row's writer must precede the horizon."""

    def safe_prefix(
        self,
        rows: Sequence[FetchedRow],
        position: int,
        horizon: int | None,
        now: float,
        take_fence: Callable[[], Fence],
    ) -> int:
        self.gaps = {start: s for start, s in self.gaps.items() if start > position}
        expected = position + 1
        for index, row in enumerate(rows):
            if row.xid is None or horizon is None:
                expected = row.notification_id + 1
                continue
            if row.notification_id != expected and not self._gap_closed(
                expected, horizon, now, take_fence
            ):
                return index
            if not row.xid < horizon:
                return index
            expected = row.notification_id + 1
        return len(rows)

    def _gap_closed(
        self, start: int, horizon: int, now: float, take_fence: Callable[[], Fence]
    ) -> bool:
        state = self.gaps.setdefault(start, GapState(first_seen=now))
        if state.fence is None:
            if now - state.first_seen < self.grace:
                return False
            state.fence = take_fence()
        return horizon > state.fence.xid


# --- the database -------------------------------------------------------------------------


def vxid(index: int, writer: Writer) -> str:
    # A prepared transaction's locks, as pg_locks shows them where that is hardest: under
    # "-1/<xid>", the writer's own id gone (PostgreSQL 15 keeps showing the writer's id).
    return f"-1/{writer.xid}" if writer.prepared else f"w{index}"


def locking_writers(s: State) -> list[str]:
    """Writers holding the events table's lock: from before nextval to their end."""
    return [vxid(i, w) for i, w in enumerate(s.writers) if w.phase in (DRAWN, INSERTED)]


def prepared_writing(s: State) -> bool:
    """A prepared transaction holds the events table's lock (pg_locks: no pid)."""
    return any(w.prepared and w.phase in (DRAWN, INSERTED) for w in s.writers)


def running_xids(s: State) -> list[int]:
    xids = [w.xid for w in s.writers if w.phase in (DRAWN, INSERTED) and w.xid is not None]
    return xids + [r.xid for r in s.replicas if r.xid is not None]


def committed(s: State) -> dict[int, int]:
    return {w.id: w.xid for w in s.writers if w.phase == COMMITTED and w.id and w.xid}


def canonical(s: State) -> State:
    """xids renumbered 1.. keeping their order (only their order matters): idle batches
    and fences burn xids, and would otherwise make every state new."""
    seen: set[int] = {s.next_xid}
    seen.update(w.xid for w in s.writers if w.xid is not None)
    for r in s.replicas:
        seen.update(x for x in (r.xid, r.horizon) if x is not None)
        seen.update(x for _, x in r.rows)
        seen.update(g[2] for g in r.guard if g[2] is not None)
    rank = {x: n for n, x in enumerate(sorted(seen), start=1)}

    def re(x: int | None) -> int | None:
        return None if x is None else rank[x]

    writers = [w._replace(xid=re(w.xid)) for w in s.writers]
    # Writers are interchangeable, and so are replicas: one order (by value) stands for
    # all, the vxids fences list and the locks' holders renamed to match.
    w_order = sorted(range(len(writers)), key=lambda n: repr(writers[n]))
    w_new = {f"w{old}": f"w{new}" for new, old in enumerate(w_order)}

    def re_vxids(ws: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if ws is None:
            return None
        return tuple(
            sorted(f"-1/{rank[int(v[3:])]}" if v.startswith("-1/") else w_new[v] for v in ws)
        )

    replicas = [
        r._replace(
            xid=re(r.xid),
            horizon=re(r.horizon),
            rows=tuple((i, rank[x]) for i, x in r.rows),
            guard=tuple((a, b, re(c), re_vxids(d), e) for a, b, c, d, e in r.guard),
        )
        for r in s.replicas
    ]
    r_order = sorted(
        range(len(replicas)),
        key=lambda n: repr((replicas[n], s.lock_owner == n, s.row_lock == n)),
    )
    r_new = {old: new for new, old in enumerate(r_order)}
    return s._replace(
        writers=tuple(writers[n] for n in w_order),
        replicas=tuple(replicas[n] for n in r_order),
        next_xid=rank[s.next_xid],
        lock_owner=None if s.lock_owner is None else r_new[s.lock_owner],
        row_lock=None if s.row_lock is None else r_new[s.row_lock],
    )


# --- steps ----------------------------------------------------------------------------------


def successors(s: State, c: Config) -> Iterator[tuple[str, State]]:
    yield from writer_steps(s, c)
    for r in range(len(s.replicas)):
        yield from replica_steps(s, c, r)


def set_writer(s: State, i: int, w: Writer) -> State:
    return s._replace(writers=(*s.writers[:i], w, *s.writers[i + 1 :]))


def set_replica(s: State, i: int, r: Replica) -> State:
    return s._replace(replicas=(*s.replicas[:i], r, *s.replicas[i + 1 :]))


def writer_steps(s: State, c: Config) -> Iterator[tuple[str, State]]:
    for i, w in enumerate(s.writers):
        name = f"writer {i}"
        if w.phase == IDLE:
            # INSERT: the table lock, then nextval (the column default); a stall follows.
            drawn = set_writer(s, i, Writer(DRAWN, s.next_id))._replace(next_id=s.next_id + 1)
            yield f"{name} draws id {s.next_id} (no xid yet)", drawn
            if c.xid_at_draw:
                with_xid = set_writer(s, i, Writer(DRAWN, s.next_id, s.next_xid))
                yield (
                    f"{name} draws id {s.next_id}, WAL-logged: xid {s.next_xid}",
                    with_xid._replace(next_id=s.next_id + 1, next_xid=s.next_xid + 1),
                )
        if w.phase == DRAWN:
            if w.xid is None:
                inserted = set_writer(s, i, w._replace(phase=INSERTED, xid=s.next_xid))
                yield (
                    f"{name} writes row {w.id}: xid {s.next_xid}",
                    inserted._replace(next_xid=s.next_xid + 1),
                )
            else:
                yield f"{name} writes row {w.id}", set_writer(s, i, w._replace(phase=INSERTED))
        if w.phase == INSERTED:
            if c.prepared and not w.prepared:
                yield f"{name} prepares", set_writer(s, i, w._replace(prepared=True))
            yield f"{name} commits id {w.id}", set_writer(s, i, w._replace(phase=COMMITTED))
        if w.phase in (DRAWN, INSERTED):
            yield (
                f"{name} rolls back id {w.id}",
                set_writer(s, i, w._replace(phase=ROLLED_BACK)),
            )


def replica_steps(s: State, c: Config, i: int) -> Iterator[tuple[str, State]]:
    r = s.replicas[i]
    name = f"replica {i}"
    if not r.active and s.lock_owner is None:
        # pg_try_advisory_lock; a new Projector, so a fresh guard.
        yield (
            f"{name} takes the lock",
            set_replica(s, i, Replica(active=True))._replace(lock_owner=i),
        )
    if s.faults and s.lock_owner == i:
        yield (
            f"{name}'s lock session is cut: the lock is free, {name} does not know yet",
            s._replace(lock_owner=None, faults=s.faults - 1),
        )
    if s.faults and c.kills and (r.active or r.phase != IDLE):
        # SIGKILL: the batch transaction rolls back, the lock session ends.
        yield (
            f"{name} is killed",
            set_replica(s, i, Replica())._replace(
                faults=s.faults - 1,
                lock_owner=None if s.lock_owner == i else s.lock_owner,
                row_lock=None if s.row_lock == i else s.row_lock,
            ),
        )
    if r.active and r.phase == IDLE and s.lock_owner != i:
        # Between batches, ProjectionLock.check raises: the runner stops following.
        yield f"{name} finds its lock gone and stands by", set_replica(s, i, Replica())
    if r.active and r.phase == IDLE and (s.row_lock is None or not c.tracking_row_lock):
        claimed = r._replace(phase=CLAIMED, start=s.checkpoint, xid=s.next_xid)
        yield (
            f"{name} claims position {s.checkpoint} (xid {s.next_xid})",
            set_replica(s, i, claimed)._replace(row_lock=i, next_xid=s.next_xid + 1),
        )
    if r.phase == CLAIMED:
        guard = thaw(r.guard, c.guard)
        label = f"{name} observes no writers"
        if guard.watching:
            watched = guard.writers_to_watch()
            # source.running_transactions: the watched ids still holding a lock, and
            # whether a prepared transaction holds the table's, in one look.
            running = {v for v in locking_writers(s) if v in watched}
            prepared = prepared_writing(s) and c.observe_prepared
            guard.observe_writers(running, prepared=prepared)
            label = f"{name} observes writers {sorted(watched)}: running {sorted(running)}"
            label += ", a prepared writer" if prepared else ""
        yield label, set_replica(s, i, r._replace(phase=OBSERVED, guard=freeze(guard)))
    if r.phase == OBSERVED:
        rows = tuple(sorted((n, x) for n, x in committed(s).items() if n > r.start))
        horizon = min(running_xids(s), default=s.next_xid) if rows else None
        fetched = r._replace(phase=FETCHED, rows=rows, horizon=horizon)
        yield (
            f"{name} fetches ids {[n for n, _ in rows]} after {r.start}, horizon {horizon}",
            set_replica(s, i, fetched),
        )
    if r.phase == FETCHED:
        yield judge(s, c, i, r.guard)
        if any(g[1] == NOW and g[2] is None for g in r.guard):
            # The guard reads a gap's age only here, so a grace running out any time
            # before is the same as just before: every unfenced gap's runs out now.
            aged = tuple((g[0], AGED, *g[2:]) if g[2] is None else g for g in r.guard)
            label, judged = judge(s, c, i, aged)
            yield f"the grace runs out; {label}", judged
    if r.phase == JUDGED:
        yield commit_batch(s, c, i)


def judge(s: State, c: Config, i: int, gaps: tuple[FrozenGap, ...]) -> tuple[str, State]:
    r = s.replicas[i]
    guard = thaw(gaps, c.guard)
    fences: list[Fence] = []

    def take_fence() -> Fence:  # source.take_fence: a fresh xid, the table's lockers
        writers = locking_writers(s)  # all with an id: all watchable
        fences.append(Fence(s.next_xid, frozenset(writers)))
        return fences[-1]

    rows = [FetchedRow(n, x) for n, x in r.rows]
    safe = guard.safe_prefix(rows, r.start, r.horizon, NOW, take_fence)
    target = rows[safe - 1].notification_id if safe else r.start
    label = f"{name_of(i)} judges: safe up to {target}"
    if fences:
        f = fences[0]
        shown = "unwatchable" if f.writers is None else sorted(f.writers)
        label += f" (fence: xid {f.xid}, writers {shown})"
    judged = r._replace(phase=JUDGED, guard=freeze(guard), target=target)
    return label, set_replica(s, i, judged)._replace(next_xid=s.next_xid + len(fences))


def commit_batch(s: State, c: Config, i: int) -> tuple[str, State]:
    r = s.replicas[i]
    done = set_replica(s, i, r._replace(phase=IDLE, xid=None, rows=(), horizon=None))
    done = done._replace(row_lock=None if s.row_lock == i else s.row_lock)
    if r.target == r.start:
        return f"{name_of(i)} commits nothing new", done
    if c.compare_and_set and s.checkpoint != r.start:
        return f"{name_of(i)} finds the position moved (TrackingConflict): rolls back", done
    applied = {n for n, _ in r.rows if n <= r.target}
    skipped = frozenset(range(r.start + 1, r.target + 1)) - applied
    return f"{name_of(i)} moves the checkpoint {s.checkpoint} -> {r.target}", done._replace(
        checkpoint=r.target,
        passed=s.passed | skipped,
        moved_back=s.moved_back or r.target < s.checkpoint,
        zombie_advanced=s.zombie_advanced or s.lock_owner != i,
    )


def name_of(i: int) -> str:
    return f"replica {i}"


# --- properties and the search ------------------------------------------------------------


def violated(s: State, c: Config) -> str | None:
    skipped = s.passed & committed(s).keys()
    if skipped:
        return f"committed id(s) {sorted(skipped)} passed over by the checkpoint"
    if s.moved_back:
        return "the checkpoint moved backward"
    inside = [i for i, r in enumerate(s.replicas) if r.phase != IDLE]
    if c.check_one_at_a_time and len(inside) > 1:
        return f"replicas {inside} are inside a batch transaction at once"
    return None


def initial(c: Config) -> State:
    return State(
        writers=(Writer(),) * c.writers, replicas=(Replica(),) * c.replicas, faults=c.faults
    )


def explore(c: Config) -> Result:
    """Every reachable state, breadth first; stops at the first violation (shortest trace)."""
    start = canonical(initial(c))
    parent: dict[State, tuple[State, str] | None] = {start: None}
    queue = deque([start])
    transitions = 0
    zombie: State | None = None
    while queue:
        s = queue.popleft()
        for label, raw in successors(s, c):
            transitions += 1
            t = canonical(raw)
            if t in parent:
                continue
            parent[t] = (s, label)
            problem = violated(t, c)
            if problem is not None:
                found = Violation(problem, trace(parent, t, c))
                return Result(len(parent), transitions, found, None)
            if zombie is None and t.zombie_advanced:
                zombie = t
            queue.append(t)
    return Result(
        len(parent), transitions, None, None if zombie is None else trace(parent, zombie, c)
    )


def trace(parent: dict[State, tuple[State, str] | None], end: State, c: Config) -> list[str]:
    """The steps from the start to ``end``, replayed so the labels show raw xids."""
    path = [end]
    link = parent[end]
    while link is not None:
        path.append(link[0])
        link = parent[link[0]]
    raw, steps = initial(c), []
    for target in reversed(path[:-1]):
        label, raw = next((lb, t) for lb, t in successors(raw, c) if canonical(t) == target)
        steps.append(label)
    return steps


def readable(violation: Violation) -> str:
    lines = [f"violation: {violation.name}"]
    lines += [f"{n:3}. {step}" for n, step in enumerate(violation.trace, start=1)]
    return "\n".join(lines)


if __name__ == "__main__":  # the larger check, too slow for the test command (about a minute)
    import time

    began = time.monotonic()
    result = explore(Config(writers=3, replicas=2, faults=1, xid_at_draw=False, kills=False))
    print(f"{result.states} states, {result.transitions} transitions,", end=" ")
    print(
        f"{time.monotonic() - began:.1f} s:",
        readable(result.violation) if result.violation else "ok",
    )

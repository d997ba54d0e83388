"""What requirements pull in, read from installed distributions' metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

# A distribution's Requires-Dist lines (importlib.metadata.requires, or the same read
# from another environment).
RequiresOf = Callable[[NormalizedName], list[str]]


def applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether ``requirement`` applies when its distribution is installed with ``extras``."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras})


def pulled_in(roots: Iterable[Requirement], requires_of: RequiresOf) -> set[NormalizedName]:
    """Every distribution ``roots`` bring, themselves included, following requested extras."""
    found: set[NormalizedName] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found.add(name)
        for line in requires_of(name):
            requirement = Requirement(line)
            if applies(requirement, extras):
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return found

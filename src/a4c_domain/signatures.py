"""Command methods with typed keyword parameters that still refuse like their model.

A command method of :class:`~a4c_domain.OnboardingApplication` spells out its keyword
parameters, so mypy and editors check a caller's keywords and types. Not every caller is
typed: an adapter may pass a decoded JSON body as ``**fields``. For such a call Python
would raise ``TypeError`` on an unknown or missing keyword; :func:`command` turns that
into the command model's own refusal (one ``InvalidCommand`` naming every field), as
for any other bad input. Values are checked by the model inside the method, as before.

Every command is also where a lost store connection is answered: the whole command runs
again, bounded (a4c_domain.lost_connection says why that is safe).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from a4c_domain.commands import Command, validate
from a4c_domain.lost_connection import run_again_when_lost

P = ParamSpec("P")
R = TypeVar("R")

# Method name -> the command model it issues (what tests compare signatures against).
COMMAND_MODELS: dict[str, type[Command]] = {}


def command(model: type[Command]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark a method (keyword-only parameters) as issuing ``model``.

    Keywords that do not fit it are refused as ``model`` refuses them (one
    ``InvalidCommand``), not with a ``TypeError``; a positional value stays a TypeError.
    """

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                signature.bind(*args, **kwargs)
            except TypeError:
                if len(args) == 1:  # only ``self``: the keywords are what does not fit
                    validate(model, **kwargs)  # names each unknown or missing field
                raise  # a positional value: a programming error, not input
            return run_again_when_lost(method.__name__, lambda: method(*args, **kwargs))

        COMMAND_MODELS[method.__name__] = model
        return checked

    return decorate

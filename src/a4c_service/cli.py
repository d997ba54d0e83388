"""Conventions of the console scripts (``a4c``, ``a4c-worker``, ``a4c-projector``,
``a4c-webhooks``, ``a4c-api``): each builds its parser with :func:`command_line` and
:func:`subcommands`.

``--help`` is plain text: every option's help ends with its default, the description
and epilog keep their line breaks, and the epilog lists the exit codes. ``--version``
prints the installed distribution's version.

The daemons' scripts (``a4c-projector``, ``a4c-webhooks``) share their exit codes but
for what 1 means: :func:`daemon_exit_codes`.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import version

DISTRIBUTION = "a4c"
# The exit code of a console script stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130
# A daemon's script: 0 success, 1 what the script says (:func:`daemon_exit_codes`), 2 bad
# configuration, usage or an unreachable database.
EXIT_OK, EXIT_PROBLEM, EXIT_INVALID = 0, 1, 2
# Where a daemon's script reads its configuration (its epilog).
FROM_ENVIRONMENT = "Configuration is read from environment variables (docs/operating.md)."


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: ...)`` to each option's help; None reads "not set", False "off".

    A required option has no default, and a help that states its own default keeps it.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            not action.option_strings
            or action.default is argparse.SUPPRESS
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
            or action.required
            or "(default:" in text
            or "%(default)" in text
        ):
            return text
        if action.default is None:
            shown = "not set"
        elif action.default is False:
            shown = "off"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


def exit_codes(codes: Iterable[tuple[int, str]]) -> str:
    """The epilog's list of exit codes, one per line."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in codes)


def daemon_exit_codes(problem: str) -> tuple[tuple[int, str], ...]:
    """A daemon's script's exit codes, ``problem`` the meaning of :data:`EXIT_PROBLEM`."""
    return (
        (EXIT_OK, "success"),
        (EXIT_PROBLEM, problem),
        (EXIT_INVALID, "bad configuration or usage, or a database that cannot be reached"),
        (INTERRUPTED, "interrupted (Ctrl-C) outside the daemon, which stops cleanly with 0"),
    )


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {version(DISTRIBUTION)}",
        help="print the version and exit",
    )


def command_line(
    prog: str, description: str, codes: Iterable[tuple[int, str]], *, epilog: str = ""
) -> argparse.ArgumentParser:
    """A console script's parser: the help conventions, ``epilog`` (if any) then the exit
    ``codes``, and ``--version``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=(f"{epilog}\n\n" if epilog else "") + exit_codes(codes),
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    return parser


def subcommands(
    parser: argparse.ArgumentParser,
    dest: str,
    *,
    required: bool = True,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> Callable[..., argparse.ArgumentParser]:
    """Give ``parser`` subcommands (their name in ``dest``); returns what adds one, with
    the help conventions and the options of ``parents`` each subcommand shares."""
    sub = parser.add_subparsers(dest=dest, required=required)
    return functools.partial(sub.add_parser, formatter_class=HelpFormatter, parents=parents)


__all__ = [
    "DISTRIBUTION",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PROBLEM",
    "FROM_ENVIRONMENT",
    "INTERRUPTED",
    "HelpFormatter",
    "add_version",
    "command_line",
    "daemon_exit_codes",
    "exit_codes",
    "subcommands",
]

"""Conventions of the console scripts (``a4c``, ``a4c-worker``, ``a4c-projector``).

``--help`` is plain text: every option's help ends with its default, the description
and epilog keep their line breaks, and the epilog lists the exit codes. ``--version``
prints the installed distribution's version.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from importlib.metadata import version

DISTRIBUTION = "a4c"
# The exit code of a console script stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


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


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {version(DISTRIBUTION)}",
        help="print the version and exit",
    )


__all__ = ["DISTRIBUTION", "INTERRUPTED", "HelpFormatter", "add_version", "exit_codes"]

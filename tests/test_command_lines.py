"""The console scripts' command lines: --version, plain help, defaults, exit codes.

``a4c-projector`` and ``a4c-webhooks`` follow the same conventions (a4c_service.cli) in
their own packages.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from a4c_projector import cli as projector_cli
from a4c_tool import cli as tool_cli
from a4c_webhooks import cli as webhooks_cli
from a4c_worker import cli as worker_cli

BIN = Path(sys.executable).parent
PARSERS: dict[str, tuple[Callable[[], argparse.ArgumentParser], tuple[tuple[int, str], ...]]] = {
    "a4c": (tool_cli.build_parser, tool_cli.EXIT_CODES),
    "a4c-worker": (worker_cli.build_parser, worker_cli.EXIT_CODES),
    "a4c-projector": (projector_cli.parser, projector_cli.EXIT_CODES),
    "a4c-webhooks": (webhooks_cli.parser, webhooks_cli.EXIT_CODES),
}
# reStructuredText that leaks from docstrings: ``literal``, :mod:`x`, :func:`x`...
MARKUP = re.compile(r"``|:[a-z]+:`")


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from every_parser(child)


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_version(script: str) -> None:
    done = subprocess.run(
        [str(BIN / script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"{script} {version('a4c')}")


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_every_option_has_help_with_its_default(script: str) -> None:
    build, _ = PARSERS[script]
    for parser in every_parser(build()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            where = f"{parser.prog} {action.option_strings[0]}"
            assert action.help, f"{where} has no help"
            shown = formatter._expand_help(action)
            assert "(default:" in shown or "(required)" in shown, f"{where}: {shown!r}"


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_help_is_plain_text_and_lists_the_exit_codes(script: str) -> None:
    build, codes = PARSERS[script]
    top = build()
    for parser in every_parser(top):
        text = parser.format_help()
        assert not MARKUP.search(text), f"{parser.prog}: {MARKUP.search(text)}"
    epilog = top.format_help().split("exit codes:", 1)[1]
    for code, meaning in codes:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", epilog, re.M), (code, epilog)
    assert {code for code, _ in codes} >= {0, 1, 2, 130}

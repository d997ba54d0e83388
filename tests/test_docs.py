"""The documentation leads somewhere real: links, anchors and command lines.

Every relative link in README.md, CHANGELOG.md, bench/README.md and docs/ points at a
file that exists and, with ``#anchor``, at a heading of that file (GitHub's slug rules).
Every command line of a ```bash block that runs one of the project's console scripts
is accepted by that script's real argument parser, and every ``bash scripts/…`` line
names a script that exists. Every ``a4c_x.y`` name in inline code is a module (or its
attribute) that exists, and the architecture page names every import contract.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted(
    {ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"}
    | set((ROOT / "docs").rglob("*.md"))
)


# Each console script's module; its parser factory is ``build_parser`` (the projector's
# ``parser``). Imported when a command is checked, so the link checks need none of them.
PROGRAMS = {
    "a4c": "a4c_tool.cli",
    "a4c-worker": "a4c_worker.cli",
    "a4c-projector": "a4c_projector.cli",
    "a4c-api": "a4c_api.cli",
    "a4c-webhooks": "a4c_webhooks.cli",
}


def parser_of(program: str) -> argparse.ArgumentParser:
    module = importlib.import_module(PROGRAMS[program])
    factory: Callable[[], argparse.ArgumentParser] = (
        module.build_parser if hasattr(module, "build_parser") else module.parser
    )
    return factory()


FENCE = re.compile(r"^\s*```")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
DOTTED = re.compile(r"\ba4c_[a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
SEPARATORS = {"|", "||", "&&", ";", "&"}


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def bash_lines(text: str) -> Iterator[str]:
    """The logical lines (continuations joined) of the ```bash blocks, in order."""
    lines: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if lines is None:
            if stripped in ("```bash", "```sh", "```shell"):
                lines = []
        elif stripped.startswith("```"):
            yield from lines
            lines = None
        elif lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1].rstrip() + " " + stripped
        else:
            lines.append(stripped)
    assert lines is None, "a ```bash block is never closed"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation out, spaces '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text()):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[str]:
    for line in prose_lines(path.read_text()):
        yield from LINK.findall(INLINE_CODE.sub("", line))


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading '#{anchor}' in {linked.relative_to(ROOT)}")
    return broken


def commands(text: str) -> Iterator[list[str]]:
    """Each simple command of the ```bash blocks, as words (comments dropped)."""
    for line in bash_lines(text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for word in lexer:
            if word in SEPARATORS:
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def program_and_arguments(words: list[str]) -> tuple[str, list[str]]:
    while words and ASSIGNMENT.match(words[0]):  # VAR=value before the command
        words = words[1:]
    if not words:
        return "", []
    return words[0].removeprefix(".venv/bin/"), words[1:]


def refusal(program: str, arguments: list[str]) -> str | None:
    """None when the program's parser accepts the arguments, else what it said."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser_of(program).parse_args(arguments)
    except SystemExit as stopped:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue() else f"exit {stopped}"
    return None


def dotted_names(text: str) -> Iterator[str]:
    """``a4c_x.y.z`` names in inline code: a module, or a module and its attributes."""
    for code in INLINE_CODE.findall(text):
        yield from DOTTED.findall(code)


def unresolved(name: str) -> str | None:
    """None when ``name`` is an importable module, or attributes of one; else why not."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        module_name = ".".join(parts[:end])
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:  # a module's attribute, asked for as a submodule
            spec = None
        if spec is None:
            continue
        found: object = importlib.import_module(module_name)
        for attribute in parts[end:]:
            if not hasattr(found, attribute):
                return f"{module_name} has no {'.'.join(parts[end:])}"
            found = getattr(found, attribute)
        return None
    return "no such module"


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOC_FILES, ids=doc_id)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize("path", DOC_FILES, ids=doc_id)
def test_every_command_line_is_accepted_by_its_program(path: Path) -> None:
    refused = []
    for words in commands(path.read_text()):
        program, arguments = program_and_arguments(words)
        if program in PROGRAMS:
            said = refusal(program, arguments)
            if said is not None:
                refused.append(f"{shlex.join([program, *arguments])}: {said}")
        elif program == "bash" and arguments and arguments[0].startswith("scripts/"):
            script = ROOT / arguments[0]
            refused += [] if script.is_file() else [f"bash {arguments[0]}: no such script"]
    assert refused == []


@pytest.mark.parametrize("path", DOC_FILES, ids=doc_id)
def test_every_module_the_docs_name_exists(path: Path) -> None:
    """A module moved or renamed (``a4c_worker.activities``...) is found in the docs."""
    missing = {name: unresolved(name) for name in set(dotted_names(path.read_text()))}
    assert {name: why for name, why in missing.items() if why is not None} == {}


def test_the_architecture_names_every_import_contract() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ids = [contract["id"] for contract in pyproject["tool"]["importlinter"]["contracts"]]
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    assert [id_ for id_ in ids if f"| `{id_}` |" not in architecture] == []


def test_the_two_commands_come_first_in_the_readme() -> None:
    first, second = list(bash_lines((ROOT / "README.md").read_text()))[:2]
    assert first.startswith("bash scripts/dev.sh")
    assert second.startswith("bash scripts/test.sh")


def test_the_docs_name_the_event_stores_real_insert_mode_default() -> None:
    """POSTGRES_ENABLE_DB_FUNCTIONS: what the application uses when the variable is unset."""
    application = importlib.import_module("a4c_domain.application")
    default = application.OnboardingApplication.env["POSTGRES_ENABLE_DB_FUNCTIONS"]
    shown = "yes" if default.lower() in ("y", "yes", "true", "t", "on", "1") else "no"
    line = f"# POSTGRES_ENABLE_DB_FUNCTIONS={shown}"
    assert line in (ROOT / ".env.example").read_text().splitlines()


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A wrong anchor, a missing file, a bad command line and a missing script are found."""
    (tmp_path / "a.md").write_text(
        "# Title here\n\n[ok](#title-here) [bad](#nowhere) [gone](missing.md)\n"
        "```bash\na4c-api new-key --operator\na4c-projector lag\nbash scripts/nope.sh\n```\n"
    )
    page = tmp_path / "a.md"
    assert [link for link in links(page)] == ["#title-here", "#nowhere", "missing.md"]
    assert "nowhere" not in anchors(page) and "title-here" in anchors(page)
    lines = list(commands(page.read_text()))[:2]
    said = [refusal(*program_and_arguments(words)) for words in lines]
    assert said[0] is not None and "--name" in said[0]
    assert said[1] is not None and "invalid choice: 'lag'" in said[1]
    assert not (ROOT / "scripts" / "nope.sh").exists()
    assert unresolved("a4c_domain.errors.A4CError") is None
    assert unresolved("a4c_domain.errors.NoSuchError") == "a4c_domain.errors has no NoSuchError"
    assert unresolved("a4c_nothing.here") == "no such module"


def test_github_slugs() -> None:
    assert slug("The HTTP service (`a4c-api`)") == "the-http-service-a4c-api"
    assert slug("Upgrading to 0.4.0") == "upgrading-to-040"
    assert slug("Personal data in workflow history (payload keys, the codec server)") == (
        "personal-data-in-workflow-history-payload-keys-the-codec-server"
    )

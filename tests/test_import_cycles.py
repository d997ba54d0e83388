"""No module of the project imports itself back through others: every import, including
those only made for type checking, runs one way, so each module can be read (and
loaded) after what it imports."""

from __future__ import annotations

import grimp
import pytest

PACKAGES = (
    "a4c_domain",
    "a4c_service",
    "a4c_outbound",
    "a4c_sso",
    "a4c_projector",
    "a4c_worker",
    "a4c_webhooks",
    "a4c_api",
    "a4c_tool",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)  # the tree as it is now


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(graph: grimp.ImportGraph, package: str) -> None:
    cycles = set()
    for importer in graph.find_descendants(package) | {package}:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.add(" -> ".join((importer, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))

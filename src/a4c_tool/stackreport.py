"""``a4c dev``'s sample: bootstraps it on the running stack, shows its progress, then
prints the read models, where to look and the dev operator key.

Knows the stack only by the addresses and callbacks it is given (:class:`SampleRun`);
starting and stopping the children is :mod:`a4c_tool.stack`.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from a4c_domain import OnboardingApplication
from a4c_tool.stackconfig import Ports
from a4c_worker.client import (
    BootstrapHandle,
    bootstrap_handle,
    connect,
    start_bootstrap,
    watch_bootstrap,
)
from a4c_worker.config import DEFAULT_TASK_QUEUE
from a4c_worker.connection import TemporalConnection
from a4c_worker.contracts import Invitee
from a4c_worker.workflows.models import BootstrapInput, BootstrapProgress

SAMPLE = BootstrapInput(
    name="Acme Widgets",
    slug="acme",
    org_type="provider",
    tags=["dev", "sample"],
    domain="acme.orgs.a4c.localhost",
    invitees=[
        Invitee(email="ada@example.com", role="admin", first_name="Ada", last_name="Lovelace"),
        Invitee(email="grace@example.com", role="member", first_name="Grace", last_name="Hopper"),
    ],
    propagation_wait_seconds=2,
    dns_verify_initial_interval_seconds=1,
)


@dataclass(frozen=True)
class SampleRun:
    """The sample bootstrap on a running stack, and the report that follows it."""

    say: Callable[[str], None]
    check: Callable[[], None]  # raises when the stack is asked to stop
    store: Mapping[str, str]  # the event store's configuration
    child_env: Mapping[str, str]  # what ``a4c-projector show`` runs with
    local_temporal: TemporalConnection
    ports: Ports
    api_url: str
    codec_url: str
    mail_dir: Path
    logs_dir: Path

    async def bootstrap(self) -> BootstrapProgress:
        client = await connect(self.local_temporal)
        try:
            handle = await start_bootstrap(client, SAMPLE, DEFAULT_TASK_QUEUE)
            self.say(f"bootstrapping {SAMPLE.slug!r} (workflow {handle.id})")
        except WorkflowAlreadyStartedError:
            # A second run: the slug's bootstrap already ran in this data folder.
            handle = bootstrap_handle(client, SAMPLE.slug)
            self.say(f"{SAMPLE.slug!r} was bootstrapped before (workflow {handle.id}); reusing it")
        return await self._follow(handle)

    async def _follow(self, handle: BootstrapHandle) -> BootstrapProgress:
        """Each change of step, state, events written or projector position; the last progress."""
        last_line = ""
        last: BootstrapProgress | None = None
        app = OnboardingApplication(self.store)

        def show(progress: BootstrapProgress) -> None:
            nonlocal last_line, last
            last = progress
            line = (
                f"  step={progress.current_step or '-':<24} state={progress.state:<12} "
                f"events={app.recorder.max_notification_id() or 0:<4} "
                f"projector={self.projector_position()}"
            )
            if line != last_line:
                self.say(line)
                last_line = line

        try:
            await watch_bootstrap(handle, show, check=self.check)
        except WorkflowFailureError as exc:
            self.say(f"bootstrap failed: {exc.cause}")
        finally:
            app.close()
        assert last is not None  # the loop queries once more after the workflow closed
        return last

    def projector_position(self) -> str:
        metrics = _fetch(f"http://127.0.0.1:{self.ports.projector_http}/metrics")
        for line in metrics.splitlines():
            if line.startswith("a4c_projector_position"):
                return line.rsplit(" ", 1)[-1].split(".")[0]
        return "?"

    def wait_for_projection(self, timeout: float = 30.0) -> None:
        app = OnboardingApplication(self.store)
        try:
            head = app.recorder.max_notification_id() or 0
        finally:
            app.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            position = self.projector_position()
            if position.isdigit() and int(position) >= head:
                return
            time.sleep(0.3)

    def report(self, dev_key: str) -> None:
        bin_dir = Path(sys.executable).parent
        self.say("\nread models:")
        for what in ("organizations", "invitations", "members"):
            self.say(_run([str(bin_dir / "a4c-projector"), "show", what], self.child_env))
        self.say(f"Temporal Web UI:  http://127.0.0.1:{self.ports.ui}/namespaces/default/workflows")
        self.say(f"  payloads sealed; the UI opens them through {self.codec_url}")
        self.say(f"mails:            {self.mail_dir}")
        for mail in sorted(self.mail_dir.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(mail.read_bytes())
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            link = next((w for w in text.split() if "token=" in w), "(no link)")
            self.say(f"  {mail.name}: to {message['To']}: {message['Subject']}")
            # Local development only: the link is shown so a developer can click it.
            self.say(f"    invitation link: {link}")
        self.say(f"API:              {self.api_url}  (OpenAPI: {self.api_url}/docs)")
        # Local development only, like the links: a fresh operator key for this run, shown
        # once; the API child holds only its hash.
        self.say(f"  dev operator key (this run only): {dev_key}")
        self.say(
            f'  curl -H "Authorization: Bearer {dev_key}" '
            f"{self.api_url}/v1/organizations/{SAMPLE.slug}"
        )
        self.say(f"logs:             {self.logs_dir}")


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return str(response.read().decode())
    except OSError:
        return ""


def _run(argv: list[str], env: Mapping[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.rstrip() or done.stderr.rstrip()

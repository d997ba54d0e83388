"""The bootstrap as its next two releases would have it: the patch deprecated, then removed.

docs/workflows.md, "Changing workflows safely": a ``workflow.patched`` branch lives through three
releases. Today's code (stage 1) keeps both branches; these classes are stages 2 and 3,
built from today's methods, so tests/worker/test_bootstrap_patch.py can show which
recorded histories each stage replays before anyone deploys it. Same workflow name as
the real one: a replayer (or worker) is given one of them, never two. Not sandboxed:
the sandbox would re-import this test module; the real class is checked sandboxed.
"""

from __future__ import annotations

from temporalio import workflow

from a4c_worker.contracts import InvitationOutcome, MailOutcome, OrganizationRef
from a4c_worker.workflows.bootstrap import (
    ACTIVATE_BEFORE_MAILS_PATCH,
    OrganizationBootstrapWorkflow,
)
from a4c_worker.workflows.models import BootstrapInput, BootstrapResult


@workflow.defn(name="OrganizationBootstrapWorkflow", sandboxed=False)
class PatchDeprecated(OrganizationBootstrapWorkflow):
    """Stage 2: only the new branch, and ``deprecate_patch`` in place of ``patched``."""

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        return await super().run(input)

    async def _activate_and_mail(
        self, spec: BootstrapInput, ref: OrganizationRef, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        workflow.deprecate_patch(ACTIVATE_BEFORE_MAILS_PATCH)
        return await self._activate_then_send(spec, ref, invitations)


@workflow.defn(name="OrganizationBootstrapWorkflow", sandboxed=False)
class PatchRemoved(OrganizationBootstrapWorkflow):
    """Stage 3: the new branch only, no trace of the patch."""

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        return await super().run(input)

    async def _activate_and_mail(
        self, spec: BootstrapInput, ref: OrganizationRef, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        return await self._activate_then_send(spec, ref, invitations)

"""SSODeactivationWorkflow: end an organization's single sign-on (``DELETE
/v1/organizations/{slug}/sso``). One step, ``deactivate_sso`` (none in force: nothing
written); the organization's members sign in as before SSO (the global provider).
A configuration being tried is not this workflow's: the API cancels its run, which
abandons it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from a4c_worker.activities.sso import SSOActivities
    from a4c_worker.contracts import SSOConnectionOutcome, SSODeactivateInput
    from a4c_worker.workflows.policies import step_options
    from a4c_worker.workflows.sso_models import SSODeactivationInput


@workflow.defn
class SSODeactivationWorkflow:
    @workflow.run
    async def run(self, input: SSODeactivationInput) -> SSOConnectionOutcome:
        outcome: SSOConnectionOutcome = await workflow.execute_activity_method(
            SSOActivities.deactivate_sso,
            SSODeactivateInput(organization_id=input.organization_id, reason=input.reason),
            **step_options(input.activities),
        )
        return outcome

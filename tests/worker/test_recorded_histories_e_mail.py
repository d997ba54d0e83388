"""Where workflow history carries invitees' e-mail addresses: known places only.

The DESIGN keeps tokens out of history but allows the address there (the bootstrap is
started with the invitees, and the steps carry them); this pins today's places, so a new
one (an update argument, an invitation's input, a failure message or id that logs and UIs
show without decoding) is a decision someone makes, not an accident:

- the bootstrap's input, result and failure details (its progress: the undo names and
  step errors name the address);
- activity inputs (``issue_invitation``) and results (the invitation and mail outcomes;
  the mail's provider message id looks like an address too);
- an invitation that issues itself (``a4c_worker.client.invite``, since 0.3.0): its input
  and its ``issued`` update's argument name the invitee, as a bootstrap's input does;
- a webhook endpoint's automatic disable (since 0.5.0): the admins it mails;
- an organization's offboarding (since 0.5.0): its input names the admins to tell, and
  each offboarded mail activity's input and result (its Message-ID), as the webhook's;
- an SSO configuration (since 0.5.0): its input names the admins to tell of the
  activation, as the offboarding's, each mail activity's input and result, and the
  code exchange's result (the verified claims: the tester's address).

Always inside a payload (encoded data, never a plain-text field of the event).
"""

from __future__ import annotations

import re

import pytest
from tests.worker.histories import recorded_histories
from tests.worker.histories.contents import texts, workflow_type

RECORDED = {name: path.read_text() for name, path in recorded_histories().items()}
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
BOOTSTRAP = "OrganizationBootstrapWorkflow"
INVITATION = "InvitationWorkflow"
WEBHOOK = "WebhookEndpointWorkflow"
OFFBOARDING = "OrganizationOffboardingWorkflow"
SSO = "SSOConfigurationWorkflow"
ALLOWED = {
    (BOOTSTRAP, "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
    (BOOTSTRAP, "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"),
    (BOOTSTRAP, "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"),
    (BOOTSTRAP, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    (BOOTSTRAP, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
    (INVITATION, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
    # An invitation issued by its own workflow: the invitee is its input, the issued
    # update's argument and the issue_invitation activity's input. Since 0.5.0 who
    # accepted too: the accept update's and accept_invitation's identity, and the
    # verified claims the exchange of an accept_with_sso returns.
    (INVITATION, "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
    (INVITATION, "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"),
    (INVITATION, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    # A webhook endpoint's automatic disable (since 0.5.0): the admins to tell are its
    # input (``notify``) and each mail activity's input; the mail's Message-ID (it looks
    # like an address) is that activity's result.
    (WEBHOOK, "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
    (WEBHOOK, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    (WEBHOOK, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
    # An offboarding (since 0.5.0): the admins to tell are its input (``admins``) and
    # each offboarded mail activity's input; the mail's Message-ID is its result.
    (OFFBOARDING, "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
    (OFFBOARDING, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    (OFFBOARDING, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
    # An SSO configuration (since 0.5.0): the admins to tell are its input and each
    # sso_activated mail activity's input; the exchange's verified claims and the mail's
    # Message-ID are activity results.
    (SSO, "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
    (SSO, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    (SSO, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
}


def places(history_json: str) -> set[tuple[str, str, str]]:
    """(workflow type, event type, field) of every address in the history."""
    found = list(texts(history_json))
    kind = workflow_type(found)
    return {
        (kind, text.event_type, re.sub(r"\[\d+\]", "[]", text.where))
        for text in found
        if ADDRESS.search(text.text)
    }


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_e_mail_addresses_only_in_the_known_payloads(name: str) -> None:
    for kind, event_type, where in places(RECORDED[name]):
        assert (kind, event_type) in ALLOWED, (event_type, where)
        assert where.endswith(".payloads[].data"), (event_type, where)


def test_the_scan_sees_the_addresses_the_bootstrap_was_given() -> None:
    happy = places(RECORDED["v0.3.0/bootstrap_happy"])
    assert (
        BOOTSTRAP,
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
        ".workflowExecutionStartedEventAttributes.input.payloads[].data",
    ) in happy

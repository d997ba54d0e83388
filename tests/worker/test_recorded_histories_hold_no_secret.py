"""No recorded history holds a token in a form that lets someone accept (DESIGN).

The recorder runs with the tests' fixed token secret, and tokens are HMAC(secret,
invitation id | generation): so the scan derives every token the recording could have
issued, from each id in the file and each generation up to the highest it mentions, and
looks for the token, its stored hash and its accept proof in every string and decoded
payload. The one proof allowed is the one an accepted invitation's history ends with:
the proof the accept consumed, in that accept's update and activity input, dead since.

The scan cannot pass by missing the tokens: the proof checks a 0.3.0 invitation fetched,
and the consumed proofs, are derived the same way and must be found.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from uuid import UUID

import pytest
from tests.support import TOKEN_SECRET
from tests.worker.histories import recorded_histories
from tests.worker.histories.contents import UUID_PATTERN, Text, texts, workflow_type

from a4c_domain.tokens import TokenIssuer, hash_token
from a4c_worker.contracts import accept_proof, proof_check
from a4c_worker.workflows.models import INVITATION_WORKFLOW_PREFIX, InvitationStatus

RECORDED = {name: path.read_text() for name, path in recorded_histories().items()}
ISSUER = TokenIssuer(TOKEN_SECRET)
INVITATION = "InvitationWorkflow"
GENERATION = re.compile(r'"token_generation":\s*(\d+)')
# Where the consumed proof is: the accept update's argument and the accept activity's input.
CONSUMED_AT = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
}


@dataclass(frozen=True)
class Leak:
    form: str  # token | token hash | accept proof
    invitation_id: UUID
    generation: int
    event_type: str
    where: str


def accepted_status(found: list[Text]) -> InvitationStatus | None:
    """The status an invitation's run completed with, if it ended accepted."""
    if workflow_type(found) != INVITATION:
        return None
    for text in found:
        if text.event_type == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" and text.where.endswith(
            ".data"
        ):
            status = InvitationStatus.model_validate_json(text.text)
            return status if status.state == "accepted" else None
    return None


def leaks(history_json: str) -> list[Leak]:
    found = list(texts(history_json))
    ids = {UUID(match) for text in found for match in UUID_PATTERN.findall(text.text)}
    top = max((int(g) for text in found for g in GENERATION.findall(text.text)), default=1)
    status = accepted_status(found)
    consumed = (
        accept_proof(ISSUER.token(status.invitation_id, status.token_generation))
        if status is not None
        else None
    )
    everything = "\n".join(text.text for text in found)
    out: list[Leak] = []
    for inv_id in ids:
        # One past the highest generation seen: a token issued but not yet mentioned.
        for generation in range(1, top + 2):
            token = ISSUER.token(inv_id, generation)
            forms = {
                "token": token,
                "token hash": hash_token(token),
                "accept proof": accept_proof(token),
            }
            for form, value in forms.items():
                if value not in everything:
                    continue
                out.extend(
                    Leak(form, inv_id, generation, text.event_type, text.where)
                    for text in found
                    if value in text.text
                    and not (value == consumed and text.event_type in CONSUMED_AT)
                )
    return out


def invitation_id_of(history_json: str) -> UUID:
    workflow_id = json.loads(history_json)["events"][0]["workflowExecutionStartedEventAttributes"][
        "workflowId"
    ]
    return UUID(workflow_id.removeprefix(INVITATION_WORKFLOW_PREFIX))


INVITATIONS = sorted(
    n for n, text in RECORDED.items() if workflow_type(list(texts(text))) == INVITATION
)
ACCEPTED = [name for name in INVITATIONS if accepted_status(list(texts(RECORDED[name])))]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_no_token_hash_or_live_proof_in_a_recorded_history(name: str) -> None:
    assert leaks(RECORDED[name]) == []


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_scan_finds_the_proof_an_accept_consumed(name: str) -> None:
    """Derived from the recorder's secret and ids: the scan looks for the right values."""
    found = list(texts(RECORDED[name]))
    status = accepted_status(found)
    assert status is not None
    proof = accept_proof(ISSUER.token(status.invitation_id, status.token_generation))
    assert {text.event_type for text in found if proof in text.text} == CONSUMED_AT


@pytest.mark.parametrize("name", [name for name in INVITATIONS if name.startswith("v")])
def test_the_scan_finds_the_proof_checks_an_invitation_fetched(name: str) -> None:
    found = "\n".join(text.text for text in texts(RECORDED[name]))
    inv_id = invitation_id_of(RECORDED[name])
    checks = [
        g for g in range(1, 64) if proof_check(accept_proof(ISSUER.token(inv_id, g))) in found
    ]
    assert checks, f"no proof check of {inv_id} derived from the recorder's secret"


def planted(history_json: str, event_index: int, secret: str) -> str:
    """The history with ``secret`` appended to the first payload of one event."""
    history = json.loads(history_json)
    event = history["events"][event_index]
    attributes = next(value for key, value in event.items() if key.endswith("Attributes"))
    payload = attributes["result"]["payloads"][0]
    data = base64.b64decode(payload["data"]).decode()
    payload["data"] = base64.b64encode(json.dumps([data, secret]).encode()).decode()
    return json.dumps(history)


def test_the_scan_finds_a_token_hidden_in_a_payload() -> None:
    """A plain text search of the file misses it (payloads are base64); the scan does not."""
    name = "v0.3.0/invitation_revoked"
    history = RECORDED[name]
    inv_id = invitation_id_of(history)
    index = next(
        i
        for i, event in enumerate(json.loads(history)["events"])
        if event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"
    )
    for form, secret in (
        ("token", ISSUER.token(inv_id, 1)),
        ("token hash", ISSUER.token_hash(inv_id, 1)),
        ("accept proof", accept_proof(ISSUER.token(inv_id, 2))),
    ):
        leaked = planted(history, index, secret)
        assert secret not in leaked
        assert [(leak.form, leak.invitation_id) for leak in leaks(leaked)] == [(form, inv_id)]

"""No address or name in Temporal's history: every payload is sealed with the payload keys.

A bootstrap with invitees runs on the real dev server through a client connected as
every a4c process connects (settings -> ``temporal_connection()`` -> ``connect``), one of
its invitations is accepted and another revoked; then each history is read raw (no codec,
as Temporal's database, its Web UI and an export hold it), and no string of any event
(payloads decoded from base64, failure messages, ids) holds an invitee's address or name.
The same histories open with the keys, also after a rotation (a new key first, the old one
kept), and replay; without the old key they fail naming it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import subprocess
import uuid
from pathlib import Path
from typing import NoReturn

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from tests.servers.http import serve_asgi
from tests.servers.temporal import find_temporal_cli
from tests.support import free_port
from tests.worker.flows import Flows, bootstrap_input, sqlite_app
from tests.worker.histories import recorded_histories
from tests.worker.histories.contents import plain_text

from a4c_api import cli as api_cli
from a4c_api.settings import ApiSettings
from a4c_api.settings import load_settings as load_api_settings
from a4c_domain import ALL_ORGANIZATIONS
from a4c_worker import runner
from a4c_worker.cli import main
from a4c_worker.client import (
    accept_invitation,
    bootstrap_handle,
    connect,
    invitation_handle,
    revoke_invitation,
    start_bootstrap,
)
from a4c_worker.codec import (
    ENCODING,
    EncryptionCodec,
    PayloadKeys,
    UndecryptablePayload,
    UnknownPayloadKey,
)
from a4c_worker.codec_server import CodecServerSettings, create_app
from a4c_worker.config import SettingsError, WorkerSettings
from a4c_worker.config import load_settings as load_worker_settings
from a4c_worker.connection import MASK, TemporalSettings
from a4c_worker.converter import DATA_CONVERTER, data_converter
from a4c_worker.worker import WORKFLOWS, workflow_runner
from a4c_worker.workflows.models import BootstrapInput

KEY_1 = PayloadKeys.generate("k1")
KEY_2 = PayloadKeys.generate("k2")
ROTATED = PayloadKeys((*KEY_2.keys, *KEY_1.keys))  # k2 seals now; k1 still opens


async def client_for(env: WorkflowEnvironment, keys: PayloadKeys | None) -> Client:
    """A client connected the way every a4c process connects, from its variables."""
    address = env.client.service_client.config.target_host
    entries = ",".join(PayloadKeys((key,)).entry() for key in keys.keys) if keys else None
    settings = TemporalSettings(temporal_address=address, temporal_payload_keys=entries)
    return await connect(settings.temporal_connection())


def invitees(slug: str) -> list[dict[str, str]]:
    """Names no other string of a history could hold by chance."""
    names = [("Zenobia", "Quillfeather"), ("Ottoline", "Brackwater"), ("Ignatius", "Plover")]
    return [
        {
            "email": f"{first.lower()}.{last.lower()}@{slug}.example.com",
            "role": "admin" if i == 0 else "member",
            "first_name": first,
            "last_name": last,
        }
        for i, (first, last) in enumerate(names)
    ]


async def test_history_holds_no_address_or_name_and_opens_after_rotation(
    tmp_path: Path, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    sealing = await client_for(temporal_env, KEY_1)
    raw = await client_for(temporal_env, None)  # reads history as Temporal stores it
    app = sqlite_app(tmp_path)
    flows = Flows(app=app, client=sealing, task_queue=task_queue)
    slug = f"sealed-{uuid.uuid4().hex[:8]}"
    people = invitees(slug)
    spec = bootstrap_input(slug, invitees=len(people), domain=False)
    spec = BootstrapInput.model_validate({**spec.model_dump(), "invitees": people})

    async with flows.worker():
        result = await (await start_bootstrap(sealing, spec, task_queue)).result()
        accepted, revoked = result.invitation_ids[0], result.invitation_ids[1]
        mail = flows.mailer.sent_to(people[0]["email"])[0]  # the invitation (then: welcome)
        token = mail.text.split("token=")[1].split()[0]
        await accept_invitation(sealing, accepted, token, f"user-{slug}")
        await revoke_invitation(sealing, revoked, "left the company")
        view = app.get_invitation(revoked, ALL_ORGANIZATIONS)
        assert view.status == "revoked"

    ids = [bootstrap_handle(raw, slug).id] + [
        invitation_handle(raw, i).id for i in result.invitation_ids
    ]
    histories = [await raw.get_workflow_handle(i).fetch_history() for i in ids]
    needles = [p[k] for p in people for k in ("email", "first_name", "last_name")]
    for history in histories:
        text = plain_text(history.to_json())
        # The scan can find what it looks for: the workflow's plain strings are there.
        assert history.workflow_id in text
        for needle in needles:
            assert needle.lower() not in text.lower(), (history.workflow_id, needle)
    started = histories[0].events[0].workflow_execution_started_event_attributes.input
    assert [p.metadata["encoding"] for p in started.payloads] == [ENCODING]

    # The keys open it; so do the rotated keys (k2 first, k1 kept) and their replayer.
    for keys in (KEY_1, ROTATED):
        reader = await client_for(temporal_env, keys)
        [opened] = await reader.data_converter.decode(started.payloads, [BootstrapInput])
        assert opened == spec
        replayer = Replayer(
            workflows=WORKFLOWS,
            data_converter=data_converter(keys),
            workflow_runner=workflow_runner(),
        )
        for history in histories:
            replayed = await replayer.replay_workflow(history, raise_on_replay_failure=True)
            assert replayed.replay_failure is None
    # An operator reads it with the temporal CLI through the codec server.
    shown = plain_text(show_through_codec_server(temporal_env, ids[0], ROTATED))
    assert people[0]["email"] in shown and people[0]["first_name"] in shown
    # Without k1 nothing written under it opens, and the error names the key.
    with pytest.raises(UnknownPayloadKey, match="'k1'"):
        await data_converter(KEY_2).decode(started.payloads, [BootstrapInput])
    app.close()


def show_through_codec_server(env: WorkflowEnvironment, workflow_id: str, keys: PayloadKeys) -> str:
    """``temporal workflow show`` of ``workflow_id`` through ``a4c-worker codec-server``'s
    app holding ``keys`` (with a token, as it runs beside a cluster)."""
    port, token = free_port(), "operator-token-" + "x" * 24
    settings = CodecServerSettings.load(
        {
            "TEMPORAL_PAYLOAD_KEYS": ",".join(PayloadKeys((k,)).entry() for k in keys.keys),
            "CODEC_SERVER_PORT": str(port),
            "CODEC_SERVER_TOKEN": token,
        }
    )
    with serve_asgi(create_app(settings), port=port) as served:
        done = subprocess.run(
            [find_temporal_cli(), "workflow", "show", "--workflow-id", workflow_id,
             "--address", env.client.service_client.config.target_host,
             "--codec-endpoint", served.base_url, "--codec-auth", f"Bearer {token}",
             "--output", "json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_payload_sealed_under_key_1_opens_after_rotation_to_key_2() -> None:
    plain = DATA_CONVERTER.payload_converter.to_payloads(["ada@example.com"])
    [sealed_1] = await EncryptionCodec(KEY_1).encode(plain)
    [sealed_2] = await EncryptionCodec(ROTATED).encode(plain)
    assert sealed_1.metadata["encryption-key-id"] == b"k1"
    assert sealed_2.metadata["encryption-key-id"] == b"k2"
    assert b"ada@example.com" not in sealed_1.SerializeToString()
    rotated = EncryptionCodec(ROTATED)
    assert await rotated.decode([sealed_1, sealed_2]) == [plain[0], plain[0]]
    # A plain payload (a history from before the codec) passes through unchanged.
    assert await rotated.decode(plain) == plain
    # Relabelled with another key's id, a sealed payload does not open.
    forged = Payload()
    forged.CopyFrom(sealed_1)
    forged.metadata["encryption-key-id"] = b"k2"
    with pytest.raises(ValueError, match="does not open"):
        await rotated.decode([forged])


@pytest.mark.parametrize("length", [0, 3, 12, 27])
async def test_a_sealed_payload_too_short_for_nonce_and_tag_is_undecryptable(
    length: int,
) -> None:
    """Shorter than nonce + tag, AES-GCM refuses before authenticating (``ValueError``,
    not ``InvalidTag``): still the codec's own error naming the key, not a crash."""
    [sealed] = await EncryptionCodec(KEY_1).encode(
        DATA_CONVERTER.payload_converter.to_payloads(["ada@example.com"])
    )
    truncated = Payload()
    truncated.CopyFrom(sealed)
    truncated.data = sealed.data[:length]
    with pytest.raises(UndecryptablePayload, match="'k1' does not open"):
        await EncryptionCodec(KEY_1).decode([truncated])


async def test_plain_first_only_opens_so_a_key_reaches_every_process_before_it_seals() -> None:
    """Switching sealing on in two rollouts: ``plain,k1`` everywhere first (it opens what
    ``k1`` sealed, but writes in clear, so a process not yet holding ``k1`` still reads
    everything written meanwhile), then ``k1``. A new key goes the same way: ``k1,k2``,
    then ``k2,k1``."""
    opening = PayloadKeys.parse(f"plain,{KEY_1.entry()}")
    assert opening.ids == ["plain", "k1"] and not opening.seals
    plain = DATA_CONVERTER.payload_converter.to_payloads(["ada@example.com"])
    codec = EncryptionCodec(opening)
    assert await codec.encode(plain) == plain
    [sealed] = await EncryptionCodec(KEY_1).encode(plain)
    assert await codec.decode([sealed]) == plain


@pytest.mark.parametrize("name", sorted(recorded_histories()))
async def test_recorded_histories_replay_with_the_sealing_converter(name: str) -> None:
    """Histories of every release (plain payloads) replay under a worker that seals."""
    history = WorkflowHistory.from_json(name, recorded_histories()[name].read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(ROTATED),
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("k1", "entry 1 is not 'id:base64key'"),
        ("k1:not base64!", "key 'k1' is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key 'k1' is 5 bytes; AES-256 needs 32"),
        (f"{KEY_1.entry()},{KEY_1.entry()}", "key id 'k1' is listed twice"),
        (",", "lists no key"),
        ("plain", "lists no key"),
        (f"{KEY_1.entry()},plain", "entry 2: 'plain' may only come first"),
        ("plain:" + KEY_1.entry().partition(":")[2], "key id 'plain'"),
    ],
)
def test_bad_payload_keys_are_refused_naming_the_variable(value: str, problem: str) -> None:
    settings = TemporalSettings(temporal_payload_keys=value)
    [(variable, found)] = settings.temporal_problems()
    assert variable == "TEMPORAL_PAYLOAD_KEYS"
    assert problem in found
    secret = value.partition(":")[2]
    assert not secret or secret not in found


def test_the_connection_shows_key_ids_never_keys() -> None:
    connection = TemporalSettings(
        temporal_payload_keys=",".join(PayloadKeys((k,)).entry() for k in ROTATED.keys)
    ).temporal_connection()
    assert connection.masked()["payload_keys"] == ["k2", "k1"]
    shown = f"{connection!r} {connection.masked()} {connection.describe()}"
    for key in ROTATED.keys:
        assert base64.b64encode(key.secret).decode() not in shown
    assert dataclasses.replace(connection, payload_keys=None).masked()["payload_keys"] is None


def test_validate_config_masks_the_payload_keys_and_production_requires_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = ",".join(PayloadKeys((k,)).entry() for k in ROTATED.keys)
    environ = {
        "TEMPORAL_PAYLOAD_KEYS": keys,
        "API_MODE": "development",
        "WORKFLOW_MODE": "development",
    }
    assert main(["validate-config"], {**environ, "A4C_TOKEN_SECRET": "s" * 40}) == 0
    printed = capsys.readouterr().out
    shown = [load_worker_settings(environ, "client").masked(), load_api_settings(environ).masked()]
    for view in shown:
        assert view["TEMPORAL_PAYLOAD_KEYS"] == MASK
        assert view["resolved"]["temporal"]["payload_keys"] == ["k2", "k1"]
    for key in ROTATED.keys:
        secret = base64.b64encode(key.secret).decode()
        assert secret not in printed and secret not in str(shown)
    assert '"payload_keys": [' in printed or "payload_keys" in printed

    with pytest.raises(SettingsError) as worker:
        load_worker_settings({"WORKFLOW_MODE": "production"}, "client")
    assert "required when WORKFLOW_MODE is production" in dict(worker.value.problems).get(
        "TEMPORAL_PAYLOAD_KEYS", ""
    )
    with pytest.raises(SettingsError) as api:
        load_api_settings({"API_MODE": "production"})
    assert (
        dict(api.value.problems)["TEMPORAL_PAYLOAD_KEYS"] == "required when API_MODE is production"
    )
    with pytest.raises(SettingsError) as api:
        load_api_settings({"API_MODE": "production", "TEMPORAL_PAYLOAD_KEYS": keys})
    assert "TEMPORAL_PAYLOAD_KEYS" not in dict(api.value.problems)


class _Started(Exception):
    """Raised where a process would go on to open its store: its start is done."""


def _stop_here(*_: object) -> NoReturn:
    raise _Started


@pytest.mark.parametrize(
    ("mode", "keys", "warned"),
    [
        pytest.param("production", "plain,{k1}", True, id="production-plain-first"),
        pytest.param("production", "{k1}", False, id="production-sealing"),
        pytest.param("development", "plain,{k1}", False, id="development-plain-first"),
    ],
)
def test_a_production_process_says_at_start_that_plain_first_seals_nothing(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    keys: str,
    warned: bool,
) -> None:
    """``plain,k1`` is allowed (the first step of switching sealing on), but a worker or
    API left that way writes history in clear: each says so, naming the variable."""
    variable = keys.format(k1=KEY_1.entry())
    worker = WorkerSettings(workflow_mode=mode, temporal_payload_keys=variable)
    api = ApiSettings(api_mode=mode, temporal_payload_keys=variable)
    monkeypatch.setattr(runner, "_stop_on_signals", _stop_here)
    monkeypatch.setattr(api_cli, "open_event_store", _stop_here)
    with caplog.at_level(logging.WARNING), pytest.raises(_Started):
        asyncio.run(runner.run_worker(worker))
    with caplog.at_level(logging.WARNING), pytest.raises(_Started):
        api_cli.serve(api)
    warnings = [
        (record.name, record.getMessage())
        for record in caplog.records
        if "TEMPORAL_PAYLOAD_KEYS" in record.getMessage()
    ]
    if not warned:
        assert warnings == []
        return
    assert [name for name, _ in warnings] == ["a4c_worker.runner", "a4c_api.cli"]
    for _, message in warnings:
        assert "written to Temporal in clear" in message
        assert "until 'plain' is removed" in message
        assert KEY_1.entry().partition(":")[2] not in message

"""``a4c-worker codec-server``: opens sealed payloads for the Temporal Web UI, and for
nobody else.

The real command runs as a subprocess on loopback without a token (how ``a4c dev`` runs
it) and is asked as the UI asks (CORS preflight, ``X-Namespace``); then it is attacked:
another origin, a rebound host name, another namespace, a form post. An instance with a
token refuses every call without it. Whatever is refused decodes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from tests.servers.http import serve_asgi
from tests.support import free_port, wait_for

from a4c_worker.cli import main
from a4c_worker.codec import EncryptionCodec, PayloadKeys
from a4c_worker.codec_server import MAX_BODY, CodecServerSettings, create_app
from a4c_worker.converter import DATA_CONVERTER

UI = "http://localhost:8233"
K1 = PayloadKeys.generate("k1")
ROTATED = PayloadKeys((*PayloadKeys.generate("k2").keys, *K1.keys))
KEYS_VARIABLE = ",".join(PayloadKeys((key,)).entry() for key in ROTATED.keys)
SECRET = "ada.lovelace@example.com"
TOKEN = "t" * 40


def body_of(*values: object, keys: PayloadKeys = K1) -> str:
    """A ``Payloads`` JSON body with ``values`` sealed under ``keys``' current key."""
    plain = DATA_CONVERTER.payload_converter.to_payloads(list(values))
    sealed = [EncryptionCodec(keys).seal(p) for p in plain]
    return json_format.MessageToJson(Payloads(payloads=sealed))


def values_of(answer: httpx.Response) -> list[object]:
    payloads = json_format.Parse(answer.text, Payloads())
    return list(DATA_CONVERTER.payload_converter.from_payloads(list(payloads.payloads)))


@pytest.fixture(scope="module")
def codec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real ``a4c-worker codec-server`` on loopback, no token, the UI's origin."""
    port = free_port()
    log = tmp_path_factory.mktemp("codec") / "codec.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TEMPORAL_PAYLOAD_KEYS": KEYS_VARIABLE,
        "CODEC_SERVER_PORT": str(port),
        "CODEC_SERVER_ORIGINS": UI,
    }
    script = Path(sys.executable).parent / "a4c-worker"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(script), "codec-server"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: _listening(port) or process.poll() is not None, what="codec server")
            assert process.poll() is None, log.read_text()
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            stopped = process.wait(timeout=10)
    assert stopped == 0, log.read_text()  # SIGTERM is a clean stop
    assert "codec decode: 1 payloads" in log.read_text()  # each call is logged...
    assert SECRET not in log.read_text()  # ...never what it opened


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def ui_headers(**extra: str) -> dict[str, str]:
    return {"Origin": UI, "Content-Type": "application/json", "X-Namespace": "default", **extra}


def test_the_ui_decodes_payloads_sealed_under_any_configured_key(codec_server: str) -> None:
    with httpx.Client(base_url=codec_server) as client:
        preflight = client.options(
            "/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == UI
        assert "X-Namespace" in preflight.headers["access-control-allow-headers"]
        # Sealed before the rotation (k1) and after it (k2), and a plain one: all open.
        plain = json.loads(
            json_format.MessageToJson(DATA_CONVERTER.payload_converter.to_payloads(["plain"])[0])
        )
        body = json.loads(body_of(SECRET))
        body["payloads"] += json.loads(body_of("after", keys=ROTATED))["payloads"] + [plain]
        answer = client.post("/decode", content=json.dumps(body), headers=ui_headers())
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == UI
        assert values_of(answer) == [SECRET, "after", "plain"]
        # /encode seals with the current key (k2); /decode opens it again.
        plain_body = json_format.MessageToJson(
            Payloads(payloads=DATA_CONVERTER.payload_converter.to_payloads([SECRET]))
        )
        sealed = client.post("/encode", content=plain_body, headers=ui_headers())
        assert sealed.status_code == 200 and SECRET not in sealed.text
        again = client.post("/decode", content=sealed.text, headers=ui_headers())
        assert values_of(again) == [SECRET]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(ui_headers(Origin="https://evil.example"), 403, id="another-origin"),
        pytest.param(ui_headers(Host="rebound.evil.example"), 403, id="dns-rebinding"),
        pytest.param(ui_headers(**{"X-Namespace": "other"}), 403, id="another-namespace"),
        pytest.param(ui_headers(**{"Content-Type": "text/plain"}), 415, id="simple-form-post"),
    ],
)
def test_what_is_refused_decodes_nothing(
    codec_server: str, headers: dict[str, str], status: int
) -> None:
    with httpx.Client(base_url=codec_server) as client:
        answer = client.post("/decode", content=body_of(SECRET), headers=headers)
    assert answer.status_code == status, answer.text
    assert SECRET not in answer.text
    if headers["Origin"] != UI:
        assert "access-control-allow-origin" not in answer.headers


def test_a_preflight_from_another_origin_is_refused(codec_server: str) -> None:
    with httpx.Client(base_url=codec_server) as client:
        answer = client.options(
            "/decode",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


def test_with_a_token_every_call_needs_it() -> None:
    port = free_port()
    settings = CodecServerSettings.load(
        {
            "TEMPORAL_PAYLOAD_KEYS": KEYS_VARIABLE,
            "CODEC_SERVER_HOST": "0.0.0.0",
            "CODEC_SERVER_PORT": str(port),
            "CODEC_SERVER_ORIGINS": UI,
            "CODEC_SERVER_TOKEN": TOKEN,
        }
    )
    with serve_asgi(create_app(settings), port=port) as served, httpx.Client() as client:
        for given in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.post(
                served.url("/decode"), content=body_of(SECRET), headers=ui_headers(**given)
            )
            assert answer.status_code == 401, given
            assert SECRET not in answer.text
        answer = client.post(
            served.url("/decode"),
            content=body_of(SECRET),
            headers=ui_headers(Authorization=f"Bearer {TOKEN}", Host="temporal-codec.internal"),
        )
        assert values_of(answer) == [SECRET]


KEYS = {"TEMPORAL_PAYLOAD_KEYS": KEYS_VARIABLE}


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "TEMPORAL_PAYLOAD_KEYS"),
        ({"TEMPORAL_PAYLOAD_KEYS": "k1:short"}, "TEMPORAL_PAYLOAD_KEYS"),
        (KEYS | {"CODEC_SERVER_HOST": "0.0.0.0"}, "CODEC_SERVER_TOKEN"),
        (KEYS | {"CODEC_SERVER_TOKEN": "short"}, "CODEC_SERVER_TOKEN"),
        (KEYS | {"CODEC_SERVER_ORIGINS": "localhost:8233"}, "CODEC_SERVER_ORIGINS"),
    ],
)
def test_the_command_refuses_an_unsafe_configuration_naming_the_variable(
    environ: dict[str, str], variable: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["codec-server"], environ) == 2
    err = capsys.readouterr().err
    assert f"configuration error: {variable}: " in err, err
    assert "short" not in err.replace("shorter", "")


def test_new_payload_key_prints_an_entry_the_settings_accept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["new-payload-key", "k3"], {}) == 0
    entry = capsys.readouterr().out.strip()
    assert entry.startswith("k3:")
    assert PayloadKeys.parse(entry).ids == ["k3"]


def test_a_body_over_the_limit_or_of_unknown_length_is_never_read(codec_server: str) -> None:
    big = b'{"payloads": []}' + b" " * MAX_BODY
    with httpx.Client(base_url=codec_server) as client:
        too_big = client.post("/decode", content=big, headers=ui_headers())
        streamed = client.post(
            "/decode", content=iter([body_of(SECRET).encode()]), headers=ui_headers()
        )
    assert too_big.status_code == 413, too_big.text
    assert streamed.status_code == 411 and SECRET not in streamed.text, streamed.text


def test_a_sealed_payload_too_short_to_open_is_refused_not_a_crash(codec_server: str) -> None:
    """Three bytes cannot hold nonce and tag: the answer is 422 naming the key, not 500."""
    truncated = {
        "payloads": [
            {
                "metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "azE="},
                "data": "YWJj",
            }
        ]
    }
    with httpx.Client(base_url=codec_server) as client:
        answer = client.post("/decode", content=json.dumps(truncated), headers=ui_headers())
    assert answer.status_code == 422, answer.text
    assert "'k1' does not open" in answer.json()["error"]

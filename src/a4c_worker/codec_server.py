"""``a4c-worker codec-server``: the Temporal Web UI (and ``temporal --codec-endpoint``)
reads sealed histories through it.

It speaks Temporal's codec server protocol: ``POST /decode`` and ``POST /encode`` take
and return ``{"payloads": [...]}`` (the ``Payloads`` message as protobuf JSON) and read
the ``X-Namespace`` header. Point the UI at it with ``--ui-codec-endpoint`` (the dev
server, ``a4c dev`` does) or the UI's ``TEMPORAL_CODEC_ENDPOINT``.

It opens personal data for whoever may call it, so it is shut by default:

* ``CODEC_SERVER_TOKEN`` set: every call needs ``Authorization: Bearer <token>`` (the UI
  sends the signed-in user's access token with ``TEMPORAL_CODEC_PASS_ACCESS_TOKEN``, or
  put a proxy that checks people in front and let it add the header). Unset, the server
  binds a loopback address only, and then answers only requests whose ``Host`` is that
  loopback address (a page in the operator's browser cannot reach it by DNS rebinding);
* a browser may call it only from ``CODEC_SERVER_ORIGINS`` (the UI's origin): CORS
  allows those and nothing else, and a request carrying another ``Origin`` is refused
  before anything is decoded; the body must be ``application/json`` (never a "simple"
  cross-site form post), of declared length, at most :data:`MAX_BODY` bytes;
* its namespace only: another ``X-Namespace`` is refused;
* every call is logged (who, how many payloads), never what they held.
"""

from __future__ import annotations

import hmac
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import uvicorn
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from pydantic import Field, SecretStr, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from a4c_service.logs import LogFormat, LogLevel
from a4c_service.settings import SettingsError, is_loopback, read_settings
from a4c_worker.codec import EncryptionCodec, UndecryptablePayload
from a4c_worker.connection import TemporalSettings

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8089
# A history event's payloads; Temporal itself refuses a payload over 2 MB by default.
MAX_BODY = 8 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecServerSettings(TemporalSettings):
    """``CODEC_SERVER_*``, the Temporal variables (namespace, payload keys) and the log's;
    none of the worker's others (the dev stack passes it the worker's environment)."""

    codec_server_host: str = DEFAULT_HOST
    codec_server_port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    # The Temporal Web UI's origin(s), comma separated: ``https://temporal.example.com``.
    codec_server_origins: list[str] = Field(default_factory=list)
    codec_server_token: SecretStr | None = None
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("codec_server_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @field_validator("codec_server_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def problems(self) -> list[tuple[str, str]]:
        """``(VARIABLE, problem)`` for everything that keeps the server from starting safely."""
        found = self.temporal_problems()
        if not found and self.payload_keys() is None:
            found.append(("TEMPORAL_PAYLOAD_KEYS", "required by the codec server"))
        if self.codec_server_token is None and not is_loopback(self.codec_server_host):
            found.append(
                (
                    "CODEC_SERVER_TOKEN",
                    "required when CODEC_SERVER_HOST is not a loopback address (the server "
                    "opens personal data for whoever calls it)",
                )
            )
        if self.codec_server_token is not None and len(self.codec_server_token) < 32:
            found.append(("CODEC_SERVER_TOKEN", "at least 32 characters"))
        for origin in self.codec_server_origins:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                found.append(
                    ("CODEC_SERVER_ORIGINS", f"{origin!r} is not an origin (scheme://host[:port])")
                )
        return found

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> CodecServerSettings:
        """The settings from ``environ`` (empty values unset); :class:`SettingsError` lists
        every problem by variable."""
        settings = read_settings(cls, environ, empty_is_unset=True)
        problems = settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    def codec(self) -> EncryptionCodec:
        keys = self.payload_keys()
        assert keys is not None, "problems() requires TEMPORAL_PAYLOAD_KEYS"
        return EncryptionCodec(keys)


def create_app(settings: CodecServerSettings) -> Starlette:
    """The codec server's ASGI app (``uvicorn`` serves it in :func:`serve`)."""
    codec = settings.codec()
    origins = frozenset(settings.codec_server_origins)
    token = settings.codec_server_token
    namespace = settings.temporal_namespace
    # Without a token only loopback names reach it: a rebinding page's Host is its own.
    port = settings.codec_server_port
    local_hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in origins:
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def refused(request: Request) -> tuple[int, str] | None:
        """Why this request may not use the codec (status, reason); None if it may."""
        origin = request.headers.get("origin")
        if origin is not None and origin not in origins:
            return 403, "origin not allowed"
        if token is None:
            if request.headers.get("host", "") not in local_hosts:
                return 403, "host not allowed"
        else:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return 401, "authorization required"
        asked = request.headers.get("x-namespace")
        if asked is not None and asked != namespace:
            return 403, f"this codec server serves namespace {namespace!r} only"
        return None

    def endpoint(
        transform: Callable[[list[Any]], Awaitable[list[Any]]], what: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            headers = cors(request)
            if request.method == "OPTIONS":
                status = 204 if "Access-Control-Allow-Origin" in headers else 403
                return Response(status_code=status, headers=headers)
            reason = refused(request)
            client = request.client.host if request.client else "?"
            if reason is not None:
                logger.warning("codec %s refused for %s: %s", what, client, reason[1])
                return JSONResponse({"error": reason[1]}, reason[0], headers=headers)
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/json":
                return JSONResponse({"error": "send application/json"}, 415, headers=headers)
            declared = request.headers.get("content-length", "")
            if not declared.isdigit():  # a streamed body of unknown size: never read
                return JSONResponse({"error": "send Content-Length"}, 411, headers=headers)
            if int(declared) > MAX_BODY:
                return JSONResponse({"error": "body too large"}, 413, headers=headers)
            body = await request.body()
            if len(body) > MAX_BODY:
                return JSONResponse({"error": "body too large"}, 413, headers=headers)
            payloads = Payloads()
            try:
                json_format.Parse(body, payloads)
                done = await transform(list(payloads.payloads))
            except (json_format.ParseError, DecodeError, UnicodeDecodeError):
                return JSONResponse({"error": "not a Payloads message"}, 400, headers=headers)
            except UndecryptablePayload as exc:
                return JSONResponse({"error": str(exc)}, 422, headers=headers)
            logger.info("codec %s: %d payloads for %s", what, len(done), client)
            answer = json_format.MessageToJson(Payloads(payloads=done))
            return Response(answer, media_type="application/json", headers=headers)

        return handle

    return Starlette(
        routes=[
            Route("/decode", endpoint(codec.decode, "decode"), methods=["POST", "OPTIONS"]),
            Route("/encode", endpoint(codec.encode, "encode"), methods=["POST", "OPTIONS"]),
        ]
    )


def serve(settings: CodecServerSettings) -> bool:
    """Serve until SIGINT or SIGTERM; True if it served (and then stopped cleanly)."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        log_config=None,
        access_log=False,  # each call is logged by the app, with what it did
        server_header=False,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGTERM, then raises it again for the handler it found;
    # the default one would end the process by the signal (-15) instead of exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    server.run()
    return bool(server.started)

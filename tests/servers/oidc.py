"""OpenID Connect for tests: a real provider over HTTP, built from Authlib's server parts.

One provider per session (``oidc_provider``), served by ``serve_asgi`` on a free port.
Its issuer is its base URL. It serves discovery (``/.well-known/openid-configuration``),
``/jwks`` (one RSA key), ``/authorize`` (a sign-in form: type the e-mail to sign in
as, click "Sign in"), ``/token`` (authorization code grant), ``/userinfo`` and, when
offered, ``/logout`` (RP-initiated logout's ``end_session_endpoint``).

The checks are Authlib's (``AuthorizationCodeGrant`` with ``OpenIDCode`` and PKCE's
``CodeChallenge``) plus this server's stricter rules: every authorization request must
carry ``state``, ``nonce``, the ``openid`` scope and an ``S256`` code challenge; clients
authenticate with the methods it lists (``client_secret_post`` and/or
``client_secret_basic``, the latter's credentials form-decoded as RFC 6749 §2.3.1 says,
so a secret's ``+`` sent unencoded is a space); a code is good once.

Other providers behave differently at their defaults; ``serve_provider(...)`` serves one
that does: ``claims_in_id_token=False`` puts ``email``/``email_verified`` only in UserInfo
(OpenID Connect Core §5.4), ``auth_methods=`` lists other client authentication methods,
``end_session=True`` offers RP-initiated logout. What relying parties sent is recorded
(``authorizations``, ``token_auth_methods``, ``logouts``).

Each provider has keys of its own, so ``serve_provider()`` is also a second, independent
provider (an organization's own, next to the session's). Misbehaving ones, for the
checks a relying party makes of a provider (``a4c_sso.discovery``):
``discovery_overrides=`` replaces fields of the discovery document (``None`` drops one;
``{"issuer": ...}`` is a provider lying about its issuer), ``published_keys=`` publishes
those JWKs instead of its signing key (``shared_secret_keys()``,
``encryption_only_keys()``: no usable key), ``delay=`` holds each discovery and JWKS
answer that many seconds (a provider slower than the caller's timeout).

Tests register a client of their own (``register_client(redirect_uri)``), so tests never
share clients; a person's ``sub`` is stable per e-mail (``sub_for``). Bearer tokens for
the API tests come from ``mint``; bad ones from its arguments (``expires_in=-60``,
``issuer=``, ``audience=``, ``key=other_key()`` or ``key=provider.forged_key()``) and
from ``mint_unsigned`` (``alg: none``).
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

import pytest
from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Payload
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.servers.http import ServedApp, serve_asgi

SCOPES = ("openid", "email", "profile")
AUTH_METHODS = ("client_secret_post", "client_secret_basic")
SIGNING_ALG = "RS256"
CODE_LIFETIME = 600  # seconds; RFC 6749 recommends at most ten minutes
TOKEN_LIFETIME = 300
# The audience of the access tokens the code flow issues, unless a client says otherwise.
DEFAULT_ACCESS_TOKEN_AUDIENCE = "a4c-api-test"
_SUB_NAMESPACE = uuid.UUID("5d0c5a2e-4a4c-4f1d-9d0e-a4c0de5e0001")


def sub_for(email: str) -> str:
    """The stable subject of the person signing in as ``email`` (case-insensitive)."""
    return str(uuid.uuid5(_SUB_NAMESPACE, email.strip().lower()))


def shared_secret_keys() -> list[dict[str, Any]]:
    """A key set with only an HS256 shared secret: nothing to verify a signature with."""
    return [OctKey.generate_key(256, parameters={"kid": "hs", "alg": "HS256"}).as_dict()]


def encryption_only_keys() -> list[dict[str, Any]]:
    """A key set with only an RSA key for encryption (``use: enc``)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "enc", "use": "enc", "alg": "RSA-OAEP"})
    return [key.as_dict(private=False)]


def other_key(kid: str | None = None) -> RSAKey:
    """A fresh RSA signing key the provider does not publish (``kid`` of its own)."""
    return RSAKey.generate_key(
        2048, parameters={"kid": kid or f"other-{secrets.token_hex(4)}", "use": "sig"}
    )


@dataclass(frozen=True)
class OIDCUser:
    """A person as the provider knows them."""

    email: str
    sub: str
    email_verified: bool = True


@dataclass(frozen=True)
class OIDCClient:
    """A registered relying party (Authlib's ``ClientMixin`` protocol, by duck typing)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    access_token_audience: str = DEFAULT_ACCESS_TOKEN_AUDIENCE
    post_logout_redirect_uris: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = AUTH_METHODS

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # A redirect_uri is always required (OpenID Connect Core 3.1.2.1).
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _AuthorizationCode:
    """One issued code (Authlib's ``AuthorizationCodeMixin`` protocol, by duck typing)."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: OIDCUser
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class _State:
    """Everything the provider remembers; guarded by ``lock`` (uvicorn's thread and the
    test's both touch it)."""

    clients: dict[str, OIDCClient] = field(default_factory=dict)
    codes: dict[str, _AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, OIDCUser] = field(default_factory=dict)
    unverified: set[str] = field(default_factory=set)
    # People whose UserInfo names another subject than their ID token (a broken provider).
    other_userinfo_sub: set[str] = field(default_factory=set)
    # What relying parties sent: authorization request parameters, how each token request
    # authenticated, the logout requests' parameters.
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_auth_methods: list[str] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)


class _Request(OAuth2Request):  # type: ignore[misc]
    """Authlib's request over already-read Starlette data (Authlib is synchronous)."""

    def __init__(self, request: Request, params: QueryParams | FormData) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._params = params
        self.payload = _Payload(params)

    @property
    def args(self) -> Mapping[str, str]:
        return self.payload.data

    @property
    def form(self) -> Mapping[str, str]:
        return self.payload.data


class _Payload(OAuth2Payload):  # type: ignore[misc]
    """Authlib's payload: the single values and every repeated one (Authlib refuses
    repeated parameters); its properties (``client_id``, ``state``...) read ``data``."""

    def __init__(self, params: QueryParams | FormData) -> None:
        self._data = {k: v for k, v in params.items() if isinstance(v, str)}
        self._datalist: dict[str, list[str]] = {}
        for key, value in params.multi_items():
            if isinstance(value, str):
                self._datalist.setdefault(key, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class _Strict:
    """Requirements beyond Authlib's defaults, as a grant extension: ``state``, the
    ``openid`` scope and an ``S256`` code challenge on every authorization request
    (Authlib asks PKCE of public clients only, and accepts ``plain``)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state'.", redirect_uri=redirect_uri)
        if "openid" not in (data.get("scope") or "").split():
            raise InvalidRequestError("The 'openid' scope is required.", redirect_uri=redirect_uri)
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'.", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "'code_challenge_method' must be S256.", redirect_uri=redirect_uri
            )


class OIDCProvider:
    """The provider's state and keys, and its Starlette app (``app``); ``issuer`` and
    ``served`` are set once it is being served."""

    def __init__(
        self,
        *,
        claims_in_id_token: bool = True,
        auth_methods: tuple[str, ...] = AUTH_METHODS,
        end_session: bool = False,
        discovery_overrides: Mapping[str, Any] | None = None,
        published_keys: Sequence[Mapping[str, Any]] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.claims_in_id_token = claims_in_id_token
        self.auth_methods = auth_methods
        self.end_session = end_session
        self.discovery_overrides = dict(discovery_overrides or {})
        self.published_keys = None if published_keys is None else [dict(k) for k in published_keys]
        self.delay = delay
        self.kid = f"test-{secrets.token_hex(4)}"
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": self.kid, "use": "sig", "alg": SIGNING_ALG}
        )
        self.issuer = ""
        self.served: ServedApp | None = None
        self._state = _State()
        self._server = _build_server(self)
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
                Route("/logout", self._logout, methods=["GET"]),
            ]
        )

    # -- for tests -----------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def jwks(self) -> dict[str, Any]:
        """The published key set (public parts only), as ``/jwks`` serves it."""
        if self.published_keys is not None:
            return {"keys": self.published_keys}
        return dict(KeySet([self.key]).as_dict(private=False))

    def register_client(
        self,
        redirect_uris: str | Sequence[str],
        *,
        access_token_audience: str = DEFAULT_ACCESS_TOKEN_AUDIENCE,
        client_secret: str | None = None,
        post_logout_redirect_uris: Sequence[str] = (),
    ) -> OIDCClient:
        """A new confidential client (random id; ``client_secret`` or a random one) allowed
        those redirect URIs, authenticating by the methods this provider lists."""
        uris = (redirect_uris,) if isinstance(redirect_uris, str) else tuple(redirect_uris)
        client = OIDCClient(
            client_id=f"client-{secrets.token_hex(6)}",
            client_secret=client_secret or secrets.token_urlsafe(24),
            redirect_uris=uris,
            access_token_audience=access_token_audience,
            post_logout_redirect_uris=tuple(post_logout_redirect_uris),
            auth_methods=self.auth_methods,
        )
        with self._state.lock:
            self._state.clients[client.client_id] = client
        return client

    def user(self, email: str) -> OIDCUser:
        """The person signing in as ``email`` (any e-mail signs in; ``sub_for`` names it)."""
        with self._state.lock:
            verified = email.strip().lower() not in self._state.unverified
        return OIDCUser(email=email.strip(), sub=sub_for(email), email_verified=verified)

    def mark_unverified(self, email: str) -> None:
        """From now on ``email``'s tokens say ``email_verified: false``."""
        with self._state.lock:
            self._state.unverified.add(email.strip().lower())

    def answer_userinfo_for_another(self, email: str) -> None:
        """From now on ``email``'s UserInfo names a subject other than its ID token's."""
        with self._state.lock:
            self._state.other_userinfo_sub.add(email.strip().lower())

    @property
    def authorizations(self) -> list[dict[str, str]]:
        """The parameters of each authorization request (the sign-in form's GET)."""
        with self._state.lock:
            return list(self._state.authorizations)

    @property
    def token_auth_methods(self) -> list[str]:
        """How each token request authenticated its client, in order."""
        with self._state.lock:
            return list(self._state.token_auth_methods)

    @property
    def logouts(self) -> list[dict[str, str]]:
        """The parameters of each accepted logout request."""
        with self._state.lock:
            return list(self._state.logouts)

    def user_claims(self, user: OIDCUser) -> dict[str, Any]:
        """What the provider says about ``user`` (UserInfo; the ID token too, by default)."""
        return {"sub": user.sub, "email": user.email, "email_verified": user.email_verified}

    def forged_key(self) -> RSAKey:
        """A key that is not the provider's but carries its ``kid`` (a forger's guess)."""
        return other_key(kid=self.kid)

    def claims(
        self,
        sub: str,
        email: str | None,
        *,
        audience: str | Sequence[str],
        roles: Sequence[str] = (),
        scope: str = "",
        expires_in: int = TOKEN_LIFETIME,
        issuer: str | None = None,
    ) -> dict[str, Any]:
        """The claims ``mint`` signs (for tests that tamper with them)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "sub": sub,
            "aud": audience if isinstance(audience, str) else list(audience),
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": secrets.token_hex(8),
        }
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = self.user(email).email_verified
        if roles:
            claims["roles"] = list(roles)
        if scope:
            claims["scope"] = scope
        return claims

    def mint(
        self,
        sub: str,
        email: str | None,
        *,
        audience: str | Sequence[str],
        roles: Sequence[str] = (),
        scope: str = "",
        expires_in: int = TOKEN_LIFETIME,
        issuer: str | None = None,
        key: RSAKey | None = None,
    ) -> str:
        """A bearer token (JWT, RS256) as this provider would issue it; bad ones with
        ``expires_in`` <= 0, another ``issuer``, another ``audience``, or ``key`` (not
        published: ``other_key()``, ``forged_key()``)."""
        claims = self.claims(
            sub,
            email,
            audience=audience,
            roles=roles,
            scope=scope,
            expires_in=expires_in,
            issuer=issuer,
        )
        return self.sign(claims, key=key)

    def sign(self, claims: Mapping[str, Any], *, key: RSAKey | None = None) -> str:
        """``claims`` signed RS256 by ``key`` (default: the provider's), ``kid`` in the header."""
        signer = key or self.key
        header = {"alg": SIGNING_ALG, "typ": "JWT", "kid": signer.kid}
        return jwt.encode(header, dict(claims), signer, algorithms=[SIGNING_ALG])

    def mint_unsigned(self, sub: str, email: str | None, *, audience: str) -> str:
        """A token with ``alg: none`` and no signature, claims otherwise valid."""
        header = {"alg": "none", "typ": "JWT"}
        claims = self.claims(sub, email, audience=audience)
        return f"{_b64(header)}.{_b64(claims)}."

    # -- endpoints -----------------------------------------------------------------

    async def _discovery(self, request: Request) -> JSONResponse:
        await asyncio.sleep(self.delay)
        logout = {"end_session_endpoint": self.url("/logout")} if self.end_session else {}
        document = {
            **logout,
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "userinfo_endpoint": self.url("/userinfo"),
            "jwks_uri": self.url("/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email",
                                 "email_verified"],
        }  # fmt: skip
        document.update(self.discovery_overrides)
        return JSONResponse({k: v for k, v in document.items() if v is not None})

    async def _jwks(self, request: Request) -> JSONResponse:
        await asyncio.sleep(self.delay)
        return JSONResponse(self.jwks)

    async def _authorize(self, request: Request) -> Response:
        if request.method == "GET":
            with self._state.lock:
                self._state.authorizations.append(dict(request.query_params))
            oauth = _Request(request, request.query_params)
            with self._state.lock:
                try:
                    self._server.get_consent_grant(oauth, end_user=None)
                except OAuth2Error as error:
                    return self._server.handle_error_response(oauth, error)  # type: ignore[no-any-return]
            return HTMLResponse(_sign_in_form(request.query_params))
        form = await request.form()
        oauth = _Request(request, form)
        email = str(form.get("email") or "").strip()
        if "@" not in email:
            return HTMLResponse(_sign_in_form(form, "Type an e-mail address."), 400)
        user = self.user(email)
        with self._state.lock:
            try:
                grant = self._server.get_consent_grant(oauth, end_user=user)
            except OAuth2Error as error:
                return self._server.handle_error_response(oauth, error)  # type: ignore[no-any-return]
            return self._server.create_authorization_response(  # type: ignore[no-any-return]
                oauth, grant_user=user, grant=grant
            )

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        oauth = _Request(request, form)
        method = (
            "client_secret_basic"
            if "authorization" in request.headers
            else ("client_secret_post" if "client_secret" in form else "none")
        )
        # One at a time: a code is checked and spent under the lock, so it is good once.
        with self._state.lock:
            self._state.token_auth_methods.append(method)
            return self._server.create_token_response(oauth)  # type: ignore[no-any-return]

    async def _userinfo(self, request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._state.lock:
            user = self._state.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return JSONResponse(
                {"error": "invalid_token"},
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        claims = self.user_claims(user)
        with self._state.lock:
            if user.email.lower() in self._state.other_userinfo_sub:
                claims["sub"] = sub_for("someone-else." + user.email)
        return JSONResponse(claims)

    async def _logout(self, request: Request) -> Response:
        """RP-initiated logout: the ID token hint must be this provider's, for a client
        that registered the ``post_logout_redirect_uri`` (sent back there, with ``state``)."""
        if not self.end_session:
            return JSONResponse({"error": "not_found"}, 404)
        params = dict(request.query_params)
        try:
            hint = jwt.decode(params.get("id_token_hint", ""), self.key, [SIGNING_ALG])
        except (JoseError, ValueError):
            return HTMLResponse("<p>Bad id_token_hint.</p>", 400)
        with self._state.lock:
            client = self._state.clients.get(str(hint.claims.get("aud")))
            target = params.get("post_logout_redirect_uri")
            if client is None or params.get("client_id", client.client_id) != client.client_id:
                return HTMLResponse("<p>Unknown client.</p>", 400)
            if target is not None and target not in client.post_logout_redirect_uris:
                return HTMLResponse("<p>Unregistered post_logout_redirect_uri.</p>", 400)
            self._state.logouts.append(params)
        if target is None:
            return HTMLResponse("<p>You are signed out.</p>")
        back = {"state": params["state"]} if "state" in params else {}
        return RedirectResponse(f"{target}?{urlencode(back)}" if back else target, 302)


def _b64(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign_in_form(params: QueryParams | FormData, problem: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.multi_items()
        if isinstance(v, str) and k != "email"
    )
    message = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body><h1>Sign in</h1>{message}
<form method="post" action="/authorize">{hidden}
<label for="email">E-mail</label> <input id="email" name="email" type="email" required>
<button type="submit">Sign in</button>
</form></body></html>"""


def _build_server(provider: OIDCProvider) -> Any:
    """Authlib's authorization server wired to ``provider``'s state and key."""
    state = provider._state

    class Server(AuthorizationServer):  # type: ignore[misc]
        def query_client(self, client_id: str) -> OIDCClient | None:
            return state.clients.get(client_id)

        def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
            state.access_tokens[token["access_token"]] = request.user

        def create_oauth2_request(self, request: Any) -> OAuth2Request:
            assert isinstance(request, _Request)
            return request

        def handle_response(
            self, status: int, body: Any, headers: Sequence[tuple[str, str]]
        ) -> Response:
            if isinstance(body, dict):
                return JSONResponse(body, status, headers=dict(headers))
            return Response(body or b"", status, headers=dict(headers))

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass  # Authlib's hook for framework signals; nothing listens here

    class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
            data = request.payload.data
            state.codes[code] = _AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=data["redirect_uri"],
                scope=request.scope,
                user=request.user,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=int(time.time()),
                expires_at=time.monotonic() + CODE_LIFETIME,
            )

        def query_authorization_code(
            self, code: str, client: OIDCClient
        ) -> _AuthorizationCode | None:
            found = state.codes.get(code)
            if found is None or found.client_id != client.client_id:
                return None
            if found.expires_at < time.monotonic():
                return None
            return found

        def delete_authorization_code(self, authorization_code: _AuthorizationCode) -> None:
            state.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: _AuthorizationCode) -> OIDCUser:
            return authorization_code.user

    class IDToken(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
            # A nonce seen on an unspent code of this client is a replayed request.
            client_id = request.payload.client_id
            return any(c.nonce == nonce and c.client_id == client_id for c in state.codes.values())

        def resolve_client_private_key(self, client: OIDCClient) -> RSAKey:
            return provider.key

        def get_client_algorithm(self, client: OIDCClient) -> str:
            return SIGNING_ALG

        def get_encode_header(self, client: OIDCClient) -> dict[str, str]:
            return {"alg": SIGNING_ALG, "typ": "JWT", "kid": provider.kid}

        def get_client_claims(self, client: OIDCClient) -> dict[str, Any]:
            now = int(time.time())
            return {
                "iss": provider.issuer,
                "aud": client.client_id,
                "iat": now,
                "exp": now + TOKEN_LIFETIME,
            }

        def generate_user_info(self, user: OIDCUser, scope: str) -> dict[str, Any]:
            if not provider.claims_in_id_token:
                return {"sub": user.sub}  # the rest from UserInfo (Core §5.4)
            return provider.user_claims(user)

    def generate_token(
        grant_type: str,
        client: OIDCClient,
        user: OIDCUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        return {
            "token_type": "Bearer",
            "access_token": provider.mint(
                user.sub, user.email, audience=client.access_token_audience, scope=scope or ""
            ),
            "expires_in": TOKEN_LIFETIME,
            "scope": scope or "",
        }

    def client_secret_basic(query_client: Any, request: OAuth2Request) -> OIDCClient | None:
        """RFC 6749 §2.3.1: the id and secret are form-encoded, then put in HTTP Basic; so
        decode them as form values (``+`` is a space), stricter than Authlib's unquote."""
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:
            return None
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            return None
        client = query_client(unquote_plus(client_id))
        if client is None or not client.check_client_secret(unquote_plus(secret)):
            return None
        return client  # type: ignore[no-any-return]

    server = Server(scopes_supported=list(SCOPES))
    server.register_client_auth_method("client_secret_basic", client_secret_basic)
    server.register_token_generator("default", generate_token)
    server.register_grant(
        CodeGrant, [_Strict(), CodeChallenge(required=True), IDToken(require_nonce=True)]
    )
    return server


@contextmanager
def serve_provider(
    *,
    claims_in_id_token: bool = True,
    auth_methods: tuple[str, ...] = AUTH_METHODS,
    end_session: bool = False,
    discovery_overrides: Mapping[str, Any] | None = None,
    published_keys: Sequence[Mapping[str, Any]] | None = None,
    delay: float = 0.0,
) -> Iterator[OIDCProvider]:
    """A provider of its own (see the module's docstring), served for the ``with`` block."""
    provider = OIDCProvider(
        claims_in_id_token=claims_in_id_token,
        auth_methods=auth_methods,
        end_session=end_session,
        discovery_overrides=discovery_overrides,
        published_keys=published_keys,
        delay=delay,
    )
    with serve_asgi(provider.app) as served:
        provider.issuer = served.base_url
        provider.served = served
        yield provider


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OIDCProvider]:
    """The session's OpenID provider, served on a free port; its issuer is its URL."""
    with serve_provider() as provider:
        yield provider


@pytest.fixture
def own_provider() -> Iterator[OIDCProvider]:
    """A provider of the test's own (keys of its own): an organization's, beside the
    session's ``oidc_provider`` as the platform's."""
    with serve_provider() as provider:
        yield provider

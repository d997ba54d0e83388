"""Why an organization's identity provider is refused, in the admin's terms.

::

    A4CError
    └── ProviderRefused             the provider cannot be used for sign-in
        ├── InvalidIssuer           the issuer is no URL an issuer may be
        ├── NotHttps                an issuer or endpoint URL is not https (production)
        ├── AddressRefused          a URL's host or address is refused (SSRF rules)
        ├── ProviderUnreachable     no answer (connection, TLS), or not HTTP 200
        ├── ProviderTooSlow         no complete answer within the timeout
        ├── InvalidDocument         not a JSON object, or larger than the cap
        ├── IssuerMismatch          the document names another issuer
        ├── MissingField            a required field is absent or of the wrong kind
        ├── UnsupportedAlgorithms   no ID token signing algorithm a4c accepts
        └── NoUsableKey             the key set has no key to verify such a signature

Whatever the provider sent appears only as :func:`excerpt` makes it: printable ASCII,
at most :data:`EXCERPT_LENGTH` characters. URLs are named by scheme and host only (as
``a4c_outbound.transport`` names them), never a path or query, which may carry a token.
``problem`` is a stable, short name of the kind (for problem+json and metrics labels);
``retryable`` says whether asking again later can succeed (a slow or unreachable
provider), for the activity that runs the check.
"""

from __future__ import annotations

import json
from typing import ClassVar

from a4c_domain.errors import A4CError

EXCERPT_LENGTH = 80


def excerpt(value: object, limit: int = EXCERPT_LENGTH) -> str:
    """``value`` as an error may quote it: printable ASCII (anything else is ``?``),
    cut to ``limit`` characters (``…`` says it was cut)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text[: limit + 1]
    cleaned = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    return cleaned[:limit] + ("…" if len(cleaned) > limit else "")


class ProviderRefused(A4CError):
    """The identity provider cannot be used; the message says why and what to fix."""

    problem: ClassVar[str] = "provider_refused"


class InvalidIssuer(ProviderRefused):
    problem = "invalid_issuer"

    def __init__(self, why: str) -> None:
        super().__init__(f"the issuer is not valid: {why}")


class NotHttps(ProviderRefused):
    problem = "not_https"

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"the provider's {what} is not an https URL: https is required")


class AddressRefused(ProviderRefused):
    problem = "address_refused"

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        super().__init__(f"the provider's {what} is refused: {reason}")


class ProviderUnreachable(ProviderRefused):
    problem = "provider_unreachable"
    retryable = True

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        super().__init__(f"could not read the provider's {what}: {reason}")


class ProviderTooSlow(ProviderRefused):
    problem = "provider_too_slow"
    retryable = True

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        super().__init__(f"the provider did not send its {what} within {timeout:g} s")


class InvalidDocument(ProviderRefused):
    problem = "invalid_document"

    def __init__(self, what: str, why: str) -> None:
        self.what = what
        super().__init__(f"the provider's {what} {why}")


class IssuerMismatch(ProviderRefused):
    problem = "issuer_mismatch"

    def __init__(self, configured: str, found: object) -> None:
        self.found = excerpt(found)
        super().__init__(
            f"the provider's discovery document names the issuer {self.found!r}, not "
            f"{excerpt(configured)!r}: the two must be exactly the same (OpenID Connect "
            "Discovery 1.0, section 4.3); configure the issuer the provider names, "
            "if it is the one you meant"
        )


class MissingField(ProviderRefused):
    problem = "missing_field"

    def __init__(self, field: str, why: str = "is missing") -> None:
        self.field = field
        super().__init__(f"the provider's discovery document: {field!r} {why}")


class UnsupportedAlgorithms(ProviderRefused):
    problem = "unsupported_algorithms"

    def __init__(self, offered: object, supported: tuple[str, ...]) -> None:
        self.offered = excerpt(offered)
        super().__init__(
            f"the provider signs ID tokens only with {self.offered}; a4c accepts "
            f"{', '.join(supported)} (never 'none' nor a shared-secret HS algorithm)"
        )


class NoUsableKey(ProviderRefused):
    problem = "no_usable_key"

    def __init__(self, algorithms: tuple[str, ...], found: str) -> None:
        super().__init__(
            "the provider's key set (jwks_uri) has no public signing key for "
            f"{', '.join(algorithms)}: {found}"
        )


class SignInFailed(A4CError):
    """A sign-in through the organization's provider did not prove who signed in; the
    message says why (never the code, a token, or what the token claimed beyond a short
    excerpt)."""

    problem: ClassVar[str] = "sign_in_failed"


class CodeRejected(SignInFailed):
    """The token endpoint did not exchange the code (spent, expired, not this client's,
    a wrong PKCE verifier or client secret)."""

    problem = "code_rejected"

    def __init__(self, status: int, error: object) -> None:
        super().__init__(
            f"the provider's token endpoint refused the code (HTTP {status}, {excerpt(error)!r})"
        )


class InvalidIDToken(SignInFailed):
    """The ID token is missing, or does not verify (signature, issuer, audience, times,
    nonce)."""

    problem = "invalid_id_token"

    def __init__(self, why: str) -> None:
        super().__init__(f"the provider's ID token is not valid: {why}")


class EmailNotVerified(SignInFailed):
    """The provider does not vouch for the address (no ``email``, or ``email_verified``
    not true)."""

    problem = "email_not_verified"

    def __init__(self) -> None:
        super().__init__(
            "the provider does not say the address is verified (email_verified): a4c "
            "signs in only verified addresses"
        )


__all__ = [
    "EXCERPT_LENGTH",
    "AddressRefused",
    "CodeRejected",
    "EmailNotVerified",
    "InvalidDocument",
    "InvalidIDToken",
    "InvalidIssuer",
    "IssuerMismatch",
    "MissingField",
    "NoUsableKey",
    "NotHttps",
    "ProviderRefused",
    "ProviderTooSlow",
    "ProviderUnreachable",
    "SignInFailed",
    "UnsupportedAlgorithms",
    "excerpt",
]

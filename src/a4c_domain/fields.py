"""The value types command fields are made of: each validator, and its JSON Schema.

A type here checks and normalises one value (a slug, a host name, an address, a
person's name...) and states the same rule as a JSON Schema pattern for the API's
OpenAPI document; tests/domain/test_command_schemas.py checks that both agree.
:mod:`a4c_domain.commands` builds the command models from them (and re-exports them).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, SecretStr, StringConstraints, WithJsonSchema

from a4c_domain.redaction import redact

# Labels that would shadow infrastructure names under the organizations' zone.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "auth", "autoconfig", "autodiscover", "cdn", "dns",
        "docs", "ftp", "help", "imap", "localhost", "login", "mail", "mx", "ns",
        "ns1", "ns2", "pop", "pop3", "root", "smtp", "static", "status", "support",
        "test", "webmail", "www",
    }
)  # fmt: skip

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,62}$")
# What TokenIssuer produces: 32 bytes, URL-safe base64 without padding.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _no_control_chars(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise ValueError("must not contain control or unassigned characters")
    return value


# What names are made of besides letters and combining marks (U+2019: the typographic
# apostrophe). Nothing that makes a link, an address or markup in a mail.
_NAME_PUNCTUATION = frozenset(" -'.\u2019")
# Letters that look like a dot: a mail client shows "evil\ua4f8com" as a link to evil.com
# (dot-like punctuation such as U+00B7, U+2024, U+FF0E, U+3002 is no letter: refused anyway).
_DOT_LIKE_LETTERS = "\u02cc\u02d1\u119e\u1427\u318d\ua4f8\ua78f"
# A dot followed by two letters is a host name ("evil.example"), not initials ("J. R.").
_HOST_LIKE = re.compile(r"\.[^\W\d_]{2}")


# An organization's name may also hold digits ("3M"), '&' and ',' ("Smith & Sons, Ltd."):
# escaped in every HTML part, none of them makes a link. A dot before a digit does
# ("10.0.0.1"), so that is refused for organizations as host names are for everyone.
_ORGANIZATION_PUNCTUATION = _NAME_PUNCTUATION | frozenset("&,")
_DOT_DIGIT = re.compile(r"\.\d")


def _name_rules(value: str, punctuation: frozenset[str], *, digits: bool, what: str) -> str:
    # The rules hold for the name as written and as NFKC (what IDNA and many mail
    # clients read) makes of it: "evil.\ufb01" is "evil.fi", "\u0140" is "l\u00b7".
    allowed_kinds = "LMN" if digits else "LM"
    for form in (value, unicodedata.normalize("NFKC", value)):
        kinds = {ch: unicodedata.category(ch)[0] for ch in form}
        if any(
            (kind not in allowed_kinds or (kind == "N" and not ch.isdecimal()))
            and ch not in punctuation
            for ch, kind in kinds.items()
        ):
            raise ValueError(f"may contain only {what}")
        if "L" not in kinds.values():
            raise ValueError("must contain a letter")
        if any(ch in _DOT_LIKE_LETTERS for ch in form):
            raise ValueError("must not contain a letter that looks like a dot")
        unmarked = "".join(ch for ch in form if kinds[ch] != "M")
        if _HOST_LIKE.search(unmarked):
            raise ValueError("must not contain a host name (a dot followed by letters)")
        if digits and _DOT_DIGIT.search(unmarked):
            raise ValueError("must not contain an address (a dot followed by a digit)")
    return value


def _person_name(value: str) -> str:
    return _name_rules(
        value, _NAME_PUNCTUATION, digits=False, what="letters, marks, spaces and - ' ."
    )


def _organization_name(value: str) -> str:
    return _name_rules(
        value,
        _ORGANIZATION_PUNCTUATION,
        digits=True,
        what="letters, marks, digits, spaces and - ' . & ,",
    )


def _slug(value: str) -> str:
    if value != value.lower():
        raise ValueError("must be lower-case")
    if not _LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    if value[2:4] == "--":
        raise ValueError("must not have '--' in positions 3-4 (reserved for IDNA)")
    if value in RESERVED_SLUGS:
        raise ValueError(f"{value!r} is reserved")
    return value


def _hostname(value: str) -> str:
    name = value.lower().rstrip(".")
    if len(name) > 253:
        raise ValueError("must be at most 253 characters")
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("must be a fully qualified host name of DNS labels")
    return name


def hostname(value: str) -> str:
    """``value`` as a host name is compared: lower-case, without surrounding space or a
    trailing dot."""
    return value.strip().lower().rstrip(".")


def inside_zone(fqdn: str, zone: str) -> bool:
    """Whether ``fqdn`` lies strictly below ``zone`` (not its apex): where an
    organization's DNS record may go."""
    return hostname(fqdn).endswith("." + hostname(zone))


def _email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    # Identity is case-insensitive in practice; the ID of an invitation depends on it.
    return result.normalized.lower()


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"tag {tag[:70]!r} must be 1-63 of a-z, 0-9, '_', '.', ':', '-' "
                "starting with a letter or digit"
            )
    return sorted(set(value))


def _token_shape(value: SecretStr) -> SecretStr:
    # Anything else cannot be a token; refusing it here keeps junk (control characters,
    # huge strings) away from the comparison. The message never echoes the input.
    if not _TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError("must be the 43-character token from the invitation link")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must be timezone-aware")
    return value


# --- the rules in JSON Schema (the API's OpenAPI document) ------------------------------
# Each restates its validator exactly, so a generated client or a fuzzer sends only what
# is accepted (tests/domain/test_command_schemas.py checks that both agree). Patterns use
# Unicode property escapes (\p{...}), which OpenAPI's JSON Schema validators read.

# What strip_whitespace removes around a text (pydantic-core: Unicode's White_Space).
_STRIPPED = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
# A character _no_control_chars lets through (categories Cc, Cf, Cs, Co, Cn are \p{C}).
_TEXT_CHAR = r"[^\p{C}]"
_TEXT_EDGE = r"[^\s\p{C}]"


def _trimmed(max_length: int, char: str, edge: str, *, rules: str = "") -> str:
    """A text of 1..max_length characters once stripped (first and last of ``edge``, the
    others of ``char``), with any whitespace around it; ``rules``: lookaheads on it."""
    # The length is a lookahead: a counted repetition of a Unicode class is too large a
    # regular expression for some validators.
    length = f"(?=[\\s\\S]{{1,{max_length}}}{_STRIPPED}$)"
    return f"^{_STRIPPED}{length}{rules}{edge}(?:{char}*{edge})?{_STRIPPED}$"


def _text_schema(max_length: int, description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": _trimmed(max_length, _TEXT_CHAR, _TEXT_EDGE),
            "description": f"{description}: 1-{max_length} characters once surrounding "
            "whitespace is removed, no control or unassigned characters",
        }
    )


def _string_schema(
    max_length: int, pattern: str, description: str, *, excluded: object = None
) -> WithJsonSchema:
    """What a string type checked by a validator documents: its length, the pattern the
    validator enforces, what else it refuses (``excluded``: a schema) and what it is."""
    schema: dict[str, object] = {"type": "string", "maxLength": max_length, "pattern": pattern}
    if excluded is not None:
        schema["not"] = excluded
    schema["description"] = description
    return WithJsonSchema(schema)


# _person_name: letters, marks and _NAME_PUNCTUATION; a letter somewhere; no dot-like
# letter; never a dot followed by two letters (marks between them ignored). What NFKC
# makes of a name (the rules' second form) is beyond a pattern: it states the first.
_PERSON_CHAR = r"[\p{L}\p{M} '.\u2019-]"
_PERSON_EDGE = r"[\p{L}\p{M}'.\u2019-]"
_DOT_LIKE_CLASS = "[" + "".join(f"\\u{ord(ch):04x}" for ch in _DOT_LIKE_LETTERS) + "]"
_PERSON_RULES = (
    r"(?=[^\n]*\p{L})" + f"(?![^\\n]*{_DOT_LIKE_CLASS})" + r"(?![^\n]*\.\p{M}*\p{L}\p{M}*\p{L})"
)
_LABEL_SCHEMA = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# The common form of an address email-validator takes: dot-atom@labels.tld, not a
# special-use domain, no IDNA-like label; 64 before the @, 254 in all.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"


def any_case(name: str) -> str:
    """A pattern matching the host name ``name`` in any case (JSON Schema has no flags)."""
    escaped = {".": r"\."}  # nothing else in a host name is special
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else escaped.get(c, c) for c in name.lower())


_SPECIAL_USE = "|".join(
    any_case(name) for name in ("arpa", "invalid", "local", "localhost", "onion", "test")
)
_EMAIL_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_SCHEMA = (
    rf"^(?=[^@]{{1,64}}@)(?=[\s\S]{{1,254}}$){_ATOM}(?:\.{_ATOM})*"
    rf"@(?:{_EMAIL_LABEL}\.)+(?!(?:{_SPECIAL_USE})$)[A-Za-z]{{2,63}}$"
)
# Upper case is accepted (and lower-cased), trailing dots dropped: 253 characters without them.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_LENGTH_RULE = r"(?=.{0,252}[A-Za-z0-9]\.*$)"


def hostname_pattern(suffix: str = r"(?:\.LABEL)+") -> str:
    """The JSON Schema pattern of a host name; ``suffix`` (with ``LABEL`` for a label)
    is what follows its first label (the API narrows it to its DNS zone)."""
    return f"^{HOSTNAME_LENGTH_RULE}{_HOST_LABEL}{suffix.replace('LABEL', _HOST_LABEL)}\\.*$"


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_chars),
    _text_schema(200, "A name"),
]
# A name as events and recorded workflow inputs may hold it: names recorded before the
# rule below still load and replay (the rule is for new commands only).
RecordedPersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_chars),
]
# A person's name as a new command takes it: it reaches the invitation mail's greeting.
PersonName = Annotated[
    RecordedPersonName,
    AfterValidator(_person_name),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _trimmed(100, _PERSON_CHAR, _PERSON_EDGE, rules=_PERSON_RULES),
            "description": "1-100 letters, marks, spaces and - ' . (no host name such as "
            "'x.example', also once NFKC-normalised; no letter that looks like a dot) once "
            "surrounding whitespace is removed",
        }
    ),
]
# An organization's name as a new registration takes it: it reaches every mail about the
# organization. Events and recorded workflow inputs keep ``Name`` (older names load).
_ORGANIZATION_CHAR = r"[\p{L}\p{M}\p{Nd} '.\u2019&,-]"
_ORGANIZATION_EDGE = r"[\p{L}\p{M}\p{Nd}'.\u2019&,-]"
OrganizationName = Annotated[
    Name,
    AfterValidator(_organization_name),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _trimmed(
                200,
                _ORGANIZATION_CHAR,
                _ORGANIZATION_EDGE,
                rules=_PERSON_RULES + r"(?![^\n]*\.\p{M}*\p{Nd})",
            ),
            "description": "1-200 letters, marks, digits, spaces and - ' . & , (no host "
            "name such as 'x.example' or address such as '10.0.0.1', also once "
            "NFKC-normalised; no letter that looks like a dot) once surrounding whitespace "
            "is removed",
        }
    ),
]
REASON_MAX_LENGTH = 500
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX_LENGTH),
    AfterValidator(_no_control_chars),
    _text_schema(REASON_MAX_LENGTH, "Why"),
]


def _redacted(value: str) -> str:
    return redact(value, limit=REASON_MAX_LENGTH)


# Text from outside (a provider's error) recorded on an event: checked as any reason
# (too long or with control characters: refused), then stored without a token or an
# accept link whatever the caller did (defence in depth).
FailureReason = Annotated[Reason, AfterValidator(_redacted)]
Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
]
# An identifier a caller gives (an OpenID client id): as checked, documented for OpenAPI.
ClientId = Annotated[Identifier, _text_schema(255, "A client id at an identity provider")]
Slug = Annotated[
    str,
    StringConstraints(max_length=63),
    AfterValidator(_slug),
    _string_schema(
        63,
        f"^{_LABEL_SCHEMA}$",
        "A DNS label: a-z, 0-9 and '-' (not first or last, not '--' in positions 3-4), "
        "not a reserved name",
        excluded={"anyOf": [{"enum": sorted(RESERVED_SLUGS)}, {"pattern": "^..--"}]},
    ),
]
Hostname = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_hostname),
    _string_schema(
        254,
        hostname_pattern(),
        "A fully qualified host name (lower-cased, trailing dot dropped)",
    ),
]
Email = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_email),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": 320,
            "pattern": _EMAIL_SCHEMA,
            "description": "An address with a public domain (stored in lower case); the "
            "pattern is the common form, the service also takes international addresses",
        }
    ),
]
Tags = Annotated[
    list[str],
    Field(max_length=20),
    AfterValidator(_tags),
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "pattern": _TAG.pattern},
            "description": "Labels (duplicates are dropped, the rest sorted)",
        }
    ),
]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
StepName = Annotated[Identifier, StringConstraints(max_length=100)]
# A presented invitation token: a str (or pydantic's SecretStr) of the issued shape.
Token = Annotated[SecretStr, AfterValidator(_token_shape)]
Role = Literal["owner", "admin", "member", "viewer"]
OrganizationType = Literal["provider", "partner"]
# The mails the platform sends about an organization (a4c_worker.activities.organization_mail).
OrganizationMailKind = Literal["welcome", "provisioning_failed", "offboarded", "sso_activated"]

# --- webhook endpoints ------------------------------------------------------------------

_ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_URL_SCHEME = re.compile(r"^[hH][tT][tT][pP][sS]?://")
# A host: a registered name (unreserved characters, percent-encoding) or an IP literal.
_URL_HOST = r"(?:[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])"
_URL_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# Path and query: printable ASCII but '#' (no fragment: it is never sent anyway).
WEBHOOK_URL_PATTERN = (
    _URL_SCHEME.pattern + _URL_HOST + "(?::" + _URL_PORT + ")?" + r'(?:[/?][!"$-~]*)?$'
)
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)
WEBHOOK_URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 500
SEALED_SECRET_MAX_LENGTH = 512


def _endpoint_name(value: str) -> str:
    if not _ENDPOINT_NAME.fullmatch(value):
        raise ValueError("must be 1-63 of a-z, 0-9 and '-', starting with a letter or digit")
    return value


def _webhook_url(value: str) -> str:
    # Syntax only: whether the host may be reached (https in production, no private
    # address) is the API's and the delivery daemon's decision, at their edge. The
    # specific refusals first, then the whole rule (WEBHOOK_URL_PATTERN, the schema's).
    if any(not "!" <= ch <= "~" for ch in value):
        raise ValueError(
            "must be printable ASCII without spaces (an IDNA host name, the rest percent-encoded)"
        )
    if not _URL_SCHEME.match(value):
        raise ValueError("must be an absolute http or https URL")
    if "#" in value:
        raise ValueError("must not have a fragment (#...)")
    if "@" in re.split(r"[/?]", value.split("//", 1)[1], maxsplit=1)[0]:
        raise ValueError("must not contain user information (user:password@)")
    if not _WEBHOOK_URL.fullmatch(value):
        raise ValueError("must be scheme://host[:port][/path][?query], a port up to 65535")
    return value


# A webhook endpoint's name, chosen by its owner: part of its id, never changed.
EndpointName = Annotated[
    str,
    StringConstraints(max_length=63),
    AfterValidator(_endpoint_name),
    _string_schema(
        63, _ENDPOINT_NAME.pattern, "1-63 of a-z, 0-9 and '-', starting with a letter or digit"
    ),
]
# Where webhooks go: its syntax (reachability and safety are checked where it is used).
WebhookURL = Annotated[
    str,
    StringConstraints(max_length=WEBHOOK_URL_MAX_LENGTH),
    AfterValidator(_webhook_url),
    _string_schema(
        WEBHOOK_URL_MAX_LENGTH,
        WEBHOOK_URL_PATTERN,
        "An absolute http or https URL in printable ASCII: a host name or IP literal, an "
        "optional port, path and query; no user information, no fragment",
    ),
]


def _issuer_url(value: str) -> str:
    _webhook_url(value)
    if "?" in value:
        raise ValueError("must not have a query (?...): an issuer is scheme://host[:port][/path]")
    return value


ISSUER_URL_PATTERN = WEBHOOK_URL_PATTERN.replace("(?:[/?]", "(?:/").replace(
    r'[!"$-~]*', r'[!"$-=@-~]*'
)
# An OpenID Connect issuer (Discovery 1.0 section 2): a URL without query or fragment.
# Its syntax only: https in production, its address and its discovery document are
# checked where it is used (a4c_sso.discovery).
IssuerURL = Annotated[
    str,
    StringConstraints(max_length=WEBHOOK_URL_MAX_LENGTH),
    AfterValidator(_issuer_url),
    _string_schema(
        WEBHOOK_URL_MAX_LENGTH,
        ISSUER_URL_PATTERN,
        "An OpenID Connect issuer: an absolute http or https URL in printable ASCII, "
        "without user information, query or fragment",
    ),
]
# Free text an owner keeps with an endpoint; may be empty.
Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX_LENGTH),
    AfterValidator(_no_control_chars),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_STRIPPED}$|" + _trimmed(DESCRIPTION_MAX_LENGTH, _TEXT_CHAR, _TEXT_EDGE),
            "description": f"0-{DESCRIPTION_MAX_LENGTH} characters once surrounding "
            "whitespace is removed, no control or unassigned characters",
        }
    ),
]


def _printable(value: str) -> str:
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        raise ValueError("must be sealed text (no whitespace or control characters)")
    return value


# A secret sealed under the platform's keys (a4c_webhooks.sealing): opaque here, never
# the secret itself. Refusals never echo it (field_errors leaves the input out).
SealedSecret = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SEALED_SECRET_MAX_LENGTH),
    AfterValidator(_printable),
]

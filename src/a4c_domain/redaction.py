"""Redacting invitation tokens from free text that is about to become a record.

A provider's error text is written by someone else: an SMTP content filter that refuses
an invitation mail may quote the whole mail, accept link included, in its reply. Such
text reaches events, read models, workflow history and logs, so it passes through
:func:`redact` first. It removes

* every URL whose query carries a ``token`` parameter, and any ``token=…`` pair;
* every run of URL-safe base64 characters as long as a token (43) or longer: a token
  (see :mod:`a4c_domain.tokens`) cannot hide inside one, glued to other characters;
* the ``secrets`` the caller knows (the token it just sent), and any fragment of them
  eight characters or longer, which catches a token split across reply lines;

after undoing the encodings a quoted mail may carry (quoted-printable soft line breaks
and ``=3D``, percent-encoding), and it leaves one bounded, single-line text without
control characters. What stays (a reply code, the server's own words) is what an
operator needs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote

REDACTED = "[redacted]"
MAX_LENGTH = 300
_ELLIPSIS = "…"

_QP_SOFT_BREAK = re.compile(r"=\r?\n")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`]+")
_TOKEN_PARAM = re.compile(r"token\s*=", re.IGNORECASE)
_TOKEN_PAIR = re.compile(r"(token\s*=)[^\s&;\"'<>`]*", re.IGNORECASE)
_B64_RUN = re.compile(r"[A-Za-z0-9_-]{8,}")
_TOKEN_LENGTH = 43
_MIN_FRAGMENT = 8
_SPACES = re.compile(r"\s+")


def redact(text: str, secrets: Iterable[str] = (), *, limit: int = MAX_LENGTH) -> str:
    """``text`` without tokens or accept links, on one line, at most ``limit`` characters."""
    text = _redact_tokens(text, secrets)
    text = "".join(" " if _is_control(ch) else ch for ch in text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
    return text


def _redact_tokens(text: str, secrets: Iterable[str]) -> str:
    text = unquote(_QP_SOFT_BREAK.sub("", text).replace("=3D", "="), errors="replace")
    known = [s for s in secrets if s]
    for secret in known:
        text = text.replace(secret, REDACTED)
    text = _URL.sub(lambda m: REDACTED if _TOKEN_PARAM.search(m[0]) else m[0], text)
    text = _TOKEN_PAIR.sub(lambda m: m[1] + REDACTED, text)
    return _B64_RUN.sub(lambda m: REDACTED if _suspect(m[0], known) else m[0], text)


def _suspect(run: str, secrets: list[str]) -> bool:
    if len(run) >= _TOKEN_LENGTH:
        return True
    return len(run) >= _MIN_FRAGMENT and any(run in secret for secret in secrets)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


__all__ = ["MAX_LENGTH", "REDACTED", "redact"]

"""Every provider error (DNS, Cloudflare, SMTP) is redacted where it is made, and what
leaves an activity carries neither a token nor the library exception it came from."""

from __future__ import annotations

from uuid import UUID

import pytest
from temporalio.exceptions import ApplicationError
from tests.support import TOKEN_SECRET

from a4c_domain.redaction import MAX_LENGTH
from a4c_domain.tokens import TokenIssuer
from a4c_worker.activities import temporal_errors
from a4c_worker.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

TOKEN = TokenIssuer(TOKEN_SECRET).token(UUID(int=1), 1)
ECHO = f"Cloudflare create answered 400: 9005: content https://a.test/accept?token={TOKEN}"


@pytest.mark.parametrize("kind", [ProviderError, TransientProviderError, PermanentProviderError])
def test_the_text_is_redacted_where_the_error_is_made(kind: type[ProviderError]) -> None:
    error = kind(ECHO + "\n" + "x " * 400)
    assert TOKEN not in str(error) and "\n" not in str(error)
    assert str(error).startswith("Cloudflare create answered 400: 9005: content [redacted]")
    assert len(str(error)) <= MAX_LENGTH


def test_an_activity_failure_holds_no_token_and_no_library_exception() -> None:
    def failing() -> None:
        try:
            raise OSError(f"peer said: {TOKEN}")  # what a library would raise
        except OSError as exc:
            raise TransientProviderError("DNS server unreachable") from exc

    with pytest.raises(ApplicationError) as caught, temporal_errors():
        failing()
    chain: list[BaseException] = []
    seen: BaseException | None = caught.value
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    assert [type(e) for e in chain] == [ApplicationError, TransientProviderError]
    assert not [e for e in chain if TOKEN in str(e)]
    assert caught.value.type == "TransientProviderError" and not caught.value.non_retryable

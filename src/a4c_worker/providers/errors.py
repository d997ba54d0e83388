"""Provider failures, split by whether trying again can help.

Activities turn these into Temporal retry decisions: a ``TransientProviderError``
(timeout, SMTP 4xx, DNS SERVFAIL, connection refused) is retried with back-off, a
``PermanentProviderError`` (SMTP 5xx, DNS REFUSED/NOTAUTH or a bad TSIG key, a rejected
API token, a DNS name already holding other data) fails the step at once so the saga
can compensate.

Every provider error's text is redacted when the error is made (``a4c_domain.redaction``:
no token, no accept link, one bounded line): a provider's own words (an SMTP reply that
quotes the mail) become the error's text and from there events, read models, workflow
history and logs. The library exception behind it is dropped by :meth:`sanitised` before
the error leaves the worker, since its text is the unredacted original.
"""

from __future__ import annotations

from typing import ClassVar, Self

from a4c_domain.errors import A4CError
from a4c_domain.redaction import redact


class ProviderError(A4CError):
    """An external provider (DNS, e-mail) did not do what was asked."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *args: object) -> None:
        super().__init__(redact(message), *args)

    def sanitised(self, *secrets: str) -> Self:
        """This error with ``secrets`` (the token just sent) also redacted, and cut off
        from the exception it was raised from, whose text is the provider's original."""
        self.args = (redact(str(self.args[0]) if self.args else "", secrets), *self.args[1:])
        self.__cause__ = None
        self.__suppress_context__ = True
        return self


class TransientProviderError(ProviderError):
    """The provider may succeed if asked again later."""

    retryable: ClassVar[bool] = True


class PermanentProviderError(ProviderError):
    """The provider refused; repeating the same request cannot succeed."""

    retryable: ClassVar[bool] = False


class DNSRecordConflict(PermanentProviderError):
    """The name already holds a record of that type with other data: someone else's.

    Never success (adopting it would hand another party's record to this organization,
    whose compensation could then delete it) and never an addition next to it.
    """

"""Provider failures, split by whether trying again can help.

Activities turn these into Temporal retry decisions: a ``TransientProviderError``
(timeout, SMTP 4xx, DNS SERVFAIL, connection refused) is retried with back-off, a
``PermanentProviderError`` (SMTP 5xx, DNS REFUSED/NOTAUTH or a bad TSIG key, a rejected
API token, a DNS name already holding other data) fails the step at once so the saga
can compensate.
"""

from __future__ import annotations

from typing import ClassVar

from a4c_domain.errors import A4CError


class ProviderError(A4CError):
    """An external provider (DNS, e-mail) did not do what was asked."""

    retryable: ClassVar[bool] = False


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

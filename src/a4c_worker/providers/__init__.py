"""Adapters to the outside world the worker's activities call: DNS and e-mail.

Each kind has a small Protocol (``DNSProvider``, ``DNSVerifier``, ``Mailer``) and
interchangeable implementations chosen by configuration; every failure surfaces as a
``TransientProviderError`` (retry) or ``PermanentProviderError`` (compensate).
"""

from a4c_worker.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

__all__ = ["PermanentProviderError", "ProviderError", "TransientProviderError"]

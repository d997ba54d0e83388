"""``python -m a4c_webhooks`` is the ``a4c-webhooks`` command."""

from a4c_webhooks.cli import entry_point

entry_point()

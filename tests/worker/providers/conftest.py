"""Fixtures local to the provider tests."""

from tests.worker.providers.fake_cloudflare import cloudflare_api

__all__ = ["cloudflare_api"]

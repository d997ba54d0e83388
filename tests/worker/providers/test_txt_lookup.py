"""Reading TXT records through a resolver, against the real test BIND: what a domain's
owner published (long texts split into strings come back joined), nothing for a name
without one, and a resolver that does not answer is a transient error."""

from __future__ import annotations

import uuid

import pytest
from tests.servers.bind import BindServer
from tests.support import free_port

from a4c_worker.providers.dns import Nameserver, ResolverTXTLookup, TXTLookup
from a4c_worker.providers.errors import TransientProviderError


def lookup_at(bind: BindServer) -> ResolverTXTLookup:
    return ResolverTXTLookup([Nameserver(host=bind.host, port=bind.port)], timeout=5)


async def test_published_texts_are_read(bind_server: BindServer) -> None:
    name = bind_server.fqdn(f"_a4c-challenge.mail-{uuid.uuid4().hex[:8]}")
    lookup = lookup_at(bind_server)
    assert isinstance(lookup, TXTLookup)
    assert await lookup.texts(name) == []
    long_text = "a4c-domain-verification=" + "x" * 300  # over 255: two strings on the wire
    bind_server.add_record(name, "TXT", f'"{long_text[:200]}" "{long_text[200:]}"')
    bind_server.add_record(name, "TXT", '"v=spf1 -all"')
    assert sorted(await lookup.texts(name.rstrip("."))) == sorted([long_text, "v=spf1 -all"])


async def test_a_name_the_resolver_refuses_to_answer_for_is_transient(
    bind_server: BindServer,
) -> None:
    # The test BIND is authoritative for its zone only: a name elsewhere is refused by
    # it, which is no answer at all.
    with pytest.raises(TransientProviderError):
        await lookup_at(bind_server).texts("_a4c-challenge.elsewhere.example")


async def test_a_resolver_that_does_not_answer_is_transient() -> None:
    lookup = ResolverTXTLookup([Nameserver(host="127.0.0.1", port=free_port())], timeout=0.5)
    with pytest.raises(TransientProviderError, match=r"in time|failed"):
        await lookup.texts("_a4c-challenge.acme.example")

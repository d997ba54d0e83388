"""Single sign-on per organization: an organization's own OpenID Connect provider.

``a4c_sso.discovery`` checks a provider before a4c trusts it (its discovery document and
keys, fetched through ``a4c_outbound``'s SSRF rules); ``a4c_sso.errors`` names each way a
provider is refused. The worker's activities run these checks, so the package sits
below the worker and imports only ``a4c_outbound``, ``a4c_domain.errors``, httpx (the
URL parser ``a4c_outbound`` uses too), joserfc and pydantic.
"""

"""From validated settings to the objects the worker runs: event store env, providers, activities.

Kept apart from the CLI so tests can build exactly what ``a4c-worker run`` builds and
check which provider classes a mode selects, without starting anything. Constructing
the providers does no I/O; building the application opens the event store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from eventsourcing.utils import Environment

from a4c_domain import OnboardingApplication
from a4c_domain.application import INVITATION_TTL_VAR, TOKEN_SECRET_VAR
from a4c_domain.errors import StoreUnreachable
from a4c_domain.persistence import PostgresConnection, connect_failure, postgres_connection
from a4c_outbound.transport import OutboundPolicy
from a4c_sso.discovery import provider_policy
from a4c_worker.activities import Links, OnboardingActivities
from a4c_worker.config import SSO_SECRET_KEYS_VARIABLE, WorkerSettings
from a4c_worker.providers.dns import (
    CloudflareDNSProvider,
    CloudflareSettings,
    DNSProvider,
    DNSVerifier,
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    InMemoryTXTLookup,
    LoggingDNSProvider,
    ResolverDNSVerifier,
    ResolverSettings,
    ResolverTXTLookup,
    RFC2136DNSProvider,
    RFC2136Settings,
    StaticDNSVerifier,
    TXTLookup,
)
from a4c_worker.providers.email import (
    FileMailer,
    InMemoryMailer,
    LoggingMailer,
    Mailer,
    SMTPMailer,
    SMTPSettings,
)
from a4c_worker.sealing import SecretKeys


@dataclass(frozen=True)
class Providers:
    dns: DNSProvider
    verifier: DNSVerifier
    mailer: Mailer
    txt: TXTLookup


def application_env(settings: WorkerSettings) -> dict[str, str]:
    """The eventsourcing environment for :class:`OnboardingApplication` (secrets included).

    Explicit settings override the passed-through ``POSTGRES_*``/``SQLITE_*``/``CIPHER_*``
    extras; only variables that were set are written, so the library's defaults stand.
    """
    env = {key: value.get_secret_value() for key, value in settings.persistence_extra.items()}
    env["PERSISTENCE_MODULE"] = settings.persistence_module
    if settings.a4c_token_secret is not None:
        env[TOKEN_SECRET_VAR] = settings.a4c_token_secret.get_secret_value()
    if settings.a4c_invitation_ttl_seconds is not None:
        env[INVITATION_TTL_VAR] = str(settings.a4c_invitation_ttl_seconds)
    if settings.cipher_key is not None:
        env["CIPHER_KEY"] = settings.cipher_key.get_secret_value()
    if settings.persistence_module == "eventsourcing.sqlite":
        env["SQLITE_DBNAME"] = settings.sqlite_dbname
        return env
    optional = {
        "POSTGRES_DBNAME": settings.postgres_dbname,
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_SCHEMA": settings.postgres_schema,
    }
    env.update({key: value for key, value in optional.items() if value is not None})
    env["POSTGRES_PORT"] = settings.postgres_port
    if settings.postgres_password is not None:  # unset: none (the domain's default)
        env["POSTGRES_PASSWORD"] = settings.postgres_password.get_secret_value()
    return env


def build_application(settings: WorkerSettings) -> OnboardingApplication:
    """Open the event store (creating its table if needed). A PostgreSQL that cannot be
    reached raises StoreUnreachable naming the variable within
    ``POSTGRES_CONNECT_TIMEOUT``, as the projector does, rather than eventsourcing's pool
    waiting half a minute for a connection and then naming none."""
    env = application_env(settings)
    if settings.persistence_module == "eventsourcing.postgres":
        # Read as the application reads it (A4C_-prefixed names first).
        check_reachable(postgres_connection(Environment(OnboardingApplication.name, env)))
    return OnboardingApplication(env)


def check_reachable(connection: PostgresConnection) -> None:
    """Connect once; a failure raises StoreUnreachable naming the variable to fix."""
    try:
        with psycopg.connect(**connection.keywords()):
            pass
    except psycopg.OperationalError as exc:
        raise StoreUnreachable(connect_failure(connection, exc)) from None


def build_dns(settings: WorkerSettings) -> tuple[DNSProvider, DNSVerifier]:
    """The DNS provider and the verifier that can see what it publishes."""
    kind = settings.resolved_dns_provider
    if kind == "memory":
        memory = InMemoryDNSProvider()
        return memory, InMemoryDNSVerifier(memory)
    if kind == "logging":
        # Nothing is published, so nothing could be resolved: trust the log.
        return LoggingDNSProvider(), StaticDNSVerifier(answer=True)
    verifier = ResolverDNSVerifier(ResolverSettings(nameservers=settings.resolved_nameservers))
    if kind == "rfc2136":
        assert settings.rfc2136_key_secret is not None  # checked by WorkerSettings.problems
        rfc = RFC2136Settings(
            server=settings.rfc2136_server or "",
            port=settings.rfc2136_port,
            zone=settings.rfc2136_zone or "",
            key_name=settings.rfc2136_key_name or "",
            key_secret=settings.rfc2136_key_secret,
            key_algorithm=settings.rfc2136_algorithm,
        )
        return RFC2136DNSProvider(rfc), verifier
    assert settings.cloudflare_api_token is not None  # checked by WorkerSettings.problems
    cloudflare = CloudflareSettings(
        api_token=settings.cloudflare_api_token,
        zone_id=settings.cloudflare_zone_id or "",
        base_url=settings.cloudflare_base_url,
    )
    return CloudflareDNSProvider(cloudflare), verifier


def build_mailer(settings: WorkerSettings) -> Mailer:
    kind = settings.resolved_email_provider
    sender = settings.from_address
    if kind == "memory":
        return InMemoryMailer(from_address=sender)
    if kind == "logging":
        return LoggingMailer(from_address=sender)
    if kind == "file":
        return FileMailer(Path(settings.a4c_mail_dir or "."), from_address=sender)
    return SMTPMailer(
        SMTPSettings(
            host=settings.smtp_host or "",
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            security=settings.smtp_security,
            timeout=settings.smtp_timeout,
            from_address=sender,
        )
    )


def build_txt(settings: WorkerSettings) -> TXTLookup:
    """How customers' domains' TXT records are read: nothing outside in mock mode (an
    in-memory table nobody publishes to), else ``EMAIL_DOMAIN_NAMESERVERS`` or the
    system's resolvers."""
    if settings.workflow_mode == "mock":
        return InMemoryTXTLookup()
    return ResolverTXTLookup(settings.email_domain_nameservers)


def build_providers(settings: WorkerSettings) -> Providers:
    dns, verifier = build_dns(settings)
    return Providers(
        dns=dns, verifier=verifier, mailer=build_mailer(settings), txt=build_txt(settings)
    )


def build_links(settings: WorkerSettings) -> Links:
    return Links(
        accept_url_base=settings.accept_url_base,
        mail_domain=settings.resolved_mail_domain,
        dns_target=settings.dns_target,
        zone=settings.dns_zone,
        support_email=settings.resolved_support_email,
        provisioning_failed_mail_to=settings.provisioning_failed_mail_to,
    )


def build_activities(
    settings: WorkerSettings,
    app: OnboardingApplication,
    providers: Providers | None = None,
) -> OnboardingActivities:
    """What ``a4c-worker run`` registers; ``providers`` default to the configured ones."""
    chosen = providers or build_providers(settings)
    return OnboardingActivities(
        app,
        chosen.dns,
        chosen.verifier,
        chosen.mailer,
        build_links(settings),
        txt=chosen.txt,
        sso_policy=build_sso_policy(settings),
        sso_keys=build_sso_keys(settings),
    )


def build_sso_keys(settings: WorkerSettings) -> SecretKeys | None:
    """The key ring organizations' client secrets open with (None: SSO_SECRET_KEYS unset)."""
    ring = settings.sso_secret_keys
    if ring is None:
        return None
    return SecretKeys.parse(ring.get_secret_value(), SSO_SECRET_KEYS_VARIABLE)


def build_sso_policy(settings: WorkerSettings) -> OutboundPolicy:
    """How organizations' identity providers are reached: https unless the worker runs
    in mock or development mode; private addresses only with SSO_ALLOW_PRIVATE_ADDRESSES."""
    return provider_policy(
        production=settings.workflow_mode == "production",
        allow_private=settings.sso_allow_private_addresses,
    )

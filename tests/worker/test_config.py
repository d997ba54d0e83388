"""Worker settings: each mistake names its variable; modes select provider classes; secrets hide."""

from __future__ import annotations

import io
import logging

import pytest
from tests.support import TOKEN_SECRET

from a4c_service.logs import JSONFormatter
from a4c_worker.config import SettingsError, load_settings
from a4c_worker.connection import MASK
from a4c_worker.providers.dns import (
    CloudflareDNSProvider,
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    InMemoryTXTLookup,
    LoggingDNSProvider,
    ResolverDNSVerifier,
    ResolverTXTLookup,
    RFC2136DNSProvider,
    StaticDNSVerifier,
)
from a4c_worker.providers.email import FileMailer, InMemoryMailer, LoggingMailer, SMTPMailer
from a4c_worker.wiring import application_env, build_links, build_providers, build_sso_policy

TSIG_SECRET = "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cy0xMjM0NTY="
SMTP_PASSWORD = "smtp-pass-W3ird-9k"
CLOUDFLARE_TOKEN = "cf-token-Xy7-unique"
PG_PASSWORD = "pg-pass-Qq1-unique"
PAYLOAD_KEY = "ZmFrZS1wYXlsb2FkLWtleS1mb3ItdGVzdHMtMzJieXQ="  # 32 bytes, base64

PRODUCTION = {
    "WORKFLOW_MODE": "production",
    "A4C_TOKEN_SECRET": TOKEN_SECRET,
    "RFC2136_SERVER": "ns1.example.test",
    "RFC2136_ZONE": "orgs.example.test",
    "RFC2136_KEY_NAME": "a4c-update",
    "RFC2136_KEY_SECRET": TSIG_SECRET,
    "SMTP_HOST": "smtp.example.test",
    "SMTP_FROM": "A4C <onboarding@mail.example.test>",
    "SMTP_USERNAME": "a4c",
    "SMTP_PASSWORD": SMTP_PASSWORD,
    "ACCEPT_URL_BASE": "https://app.example.test/invitations/accept",
    "DNS_TARGET": "ingress.example.test",
    "DNS_ZONE": "orgs.example.test",
    "PERSISTENCE_MODULE": "eventsourcing.postgres",
    "POSTGRES_DBNAME": "a4c",
    "POSTGRES_HOST": "db.example.test",
    "POSTGRES_USER": "a4c",
    "POSTGRES_PASSWORD": PG_PASSWORD,
    "POSTGRES_POOL_SIZE": "7",
    "TEMPORAL_PAYLOAD_KEYS": f"k1:{PAYLOAD_KEY}",
}


# Development is asked for, as `a4c dev` and the tests do: production is the default.
DEVELOPMENT = {"WORKFLOW_MODE": "development", "A4C_TOKEN_SECRET": TOKEN_SECRET}


def problems_of(environ: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert str(caught.value)  # a readable message, not an empty exception
    return dict(caught.value.problems)


def without(environ: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in names}


def test_complete_production_settings_load() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.resolved_dns_provider == "rfc2136"
    assert settings.resolved_email_provider == "smtp"
    assert settings.resolved_mail_domain == "mail.example.test"
    # The RFC 2136 primary is authoritative: verification asks it unless told otherwise.
    assert [(ns.host, ns.port) for ns in settings.resolved_nameservers] == [
        ("ns1.example.test", 53)
    ]


@pytest.mark.parametrize(
    "missing",
    [
        "A4C_TOKEN_SECRET",
        "RFC2136_SERVER",
        "RFC2136_ZONE",
        "RFC2136_KEY_NAME",
        "RFC2136_KEY_SECRET",
        "SMTP_HOST",
        "SMTP_FROM",
        "SMTP_PASSWORD",
        "ACCEPT_URL_BASE",
        "DNS_TARGET",
        "DNS_ZONE",
        "POSTGRES_DBNAME",
        "POSTGRES_HOST",
        "POSTGRES_USER",
        "TEMPORAL_PAYLOAD_KEYS",
    ],
)
def test_each_missing_production_variable_is_named(missing: str) -> None:
    problems = problems_of(without(PRODUCTION, missing))
    assert missing in problems, problems
    assert problems[missing].startswith("required") or "together" in problems[missing]


def test_production_is_the_default() -> None:
    settings = load_settings(without(PRODUCTION, "WORKFLOW_MODE"))
    assert settings.workflow_mode == "production"
    assert (settings.resolved_dns_provider, settings.resolved_email_provider) == ("rfc2136", "smtp")


def test_a_deployment_that_forgot_the_mode_is_told_what_production_needs() -> None:
    # Not a worker that quietly logs mails instead of sending them: it refuses to start,
    # naming each variable production needs and how to ask for development.
    problems = problems_of({"A4C_TOKEN_SECRET": TOKEN_SECRET})
    for variable in ("ACCEPT_URL_BASE", "DNS_TARGET", "DNS_ZONE", "TEMPORAL_PAYLOAD_KEYS"):
        assert problems[variable] == "required when WORKFLOW_MODE is production", problems
    for variable, provider in (
        ("RFC2136_SERVER", "DNS_PROVIDER is rfc2136"),
        ("SMTP_HOST", "EMAIL_PROVIDER is smtp"),
    ):
        # A provider nobody named is said to be the mode's choice.
        assert (
            problems[variable]
            == f"required when {provider} (the default when WORKFLOW_MODE is production)"
        )
    assert list(problems)[-1] == "WORKFLOW_MODE", problems  # the hint comes last
    assert problems["WORKFLOW_MODE"].startswith("not set, so production (the default)")
    assert "for local use, set WORKFLOW_MODE=development" in problems["WORKFLOW_MODE"]
    # Only when production was not asked for: then it is a choice, not a default.
    assert "WORKFLOW_MODE" not in problems_of(without(PRODUCTION, "DNS_ZONE"))


def test_empty_value_counts_as_missing() -> None:
    assert "SMTP_HOST" in problems_of({**PRODUCTION, "SMTP_HOST": ""})


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("WORKFLOW_MODE", "staging", "mock"),
        ("DNS_PROVIDER", "route53", "rfc2136"),
        ("EMAIL_PROVIDER", "sendgrid", "smtp"),
        ("A4C_TOKEN_SECRET", "short", "32"),
        ("HEALTH_PORT", "eighty", "integer"),
        ("HEALTH_PORT", "70000", "65535"),
        ("SMTP_PORT", "0", "1"),
        ("SMTP_SECURITY", "ssl", "starttls"),
        ("RFC2136_ALGORITHM", "hmac-rot13", "hmac-sha256"),
        ("RFC2136_KEY_SECRET", "not base64!", "base64"),
        ("DNS_NAMESERVERS", "ns1:fifty-three", "port"),
        ("ACCEPT_URL_BASE", "javascript:alert(1)", "http"),
        ("ACCEPT_URL_BASE", "https://app.example.test/accept?x=1", "query"),
        ("SHUTDOWN_GRACE_SECONDS", "-1", "0"),
        ("LOG_LEVEL", "chatty", "INFO"),
        ("LOG_FORMAT", "xml", "json"),
        ("PERSISTENCE_MODULE", "eventsourcing.mysql", "postgres"),
        ("TEMPORAL_METRICS_PORT", "nope", "integer"),
        ("POSTGRES_PORT", "5432,x", "65535"),
        ("POSTGRES_PORT", "70000", "65535"),
        ("SUPPORT_EMAIL", "help desk", "@"),
        ("PROVISIONING_FAILED_MAIL_TO", "ops@localhost", "after the @"),
    ],
)
def test_bad_value_is_named_with_the_problem(variable: str, value: str, fragment: str) -> None:
    problems = problems_of({**PRODUCTION, variable: value})
    assert variable in problems, problems
    assert fragment in problems[variable]


def test_problems_are_worded_for_the_operator_not_in_pydantics_terms() -> None:
    problems = problems_of({**PRODUCTION, "SMTP_PORT": "x", "HEALTH_PORT": "70000"})
    assert problems["SMTP_PORT"].startswith("must be a valid integer"), problems
    assert problems["HEALTH_PORT"].startswith("must be less than or equal to 65535"), problems
    for message in problems.values():
        assert "should" not in message and "Input" not in message, message


def test_all_field_errors_are_reported_at_once() -> None:
    problems = problems_of({**PRODUCTION, "HEALTH_PORT": "x", "SMTP_PORT": "y"})
    assert {"HEALTH_PORT", "SMTP_PORT"} <= problems.keys()


def test_cloudflare_needs_token_zone_and_nameservers() -> None:
    environ = {**without(PRODUCTION, "RFC2136_SERVER"), "DNS_PROVIDER": "cloudflare"}
    problems = problems_of(environ)
    assert {"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ZONE_ID", "DNS_NAMESERVERS"} <= problems.keys()
    assert "RFC2136_SERVER" not in problems  # not the provider in use


def test_file_mailer_needs_a_folder() -> None:
    problems = problems_of({**DEVELOPMENT, "EMAIL_PROVIDER": "file"})
    assert "A4C_MAIL_DIR" in problems


def test_mock_mode_needs_only_the_token_secret() -> None:
    settings = load_settings({"WORKFLOW_MODE": "mock", "A4C_TOKEN_SECRET": TOKEN_SECRET})
    providers = build_providers(settings)
    assert type(providers.dns) is InMemoryDNSProvider
    assert type(providers.verifier) is InMemoryDNSVerifier
    assert type(providers.mailer) is InMemoryMailer
    # The verifier sees exactly what the mock provider published.
    assert providers.verifier.provider is providers.dns
    assert type(providers.txt) is InMemoryTXTLookup  # no customer's DNS is asked


@pytest.mark.parametrize(
    ("environ", "dns", "verifier", "mailer"),
    [
        ({}, LoggingDNSProvider, StaticDNSVerifier, LoggingMailer),
        ({"A4C_MAIL_DIR": "/tmp/a4c-mail"}, LoggingDNSProvider, StaticDNSVerifier, FileMailer),
        (
            {"EMAIL_PROVIDER": "memory", "DNS_PROVIDER": "memory"},
            InMemoryDNSProvider,
            InMemoryDNSVerifier,
            InMemoryMailer,
        ),
        (
            {
                "DNS_PROVIDER": "rfc2136",
                "RFC2136_SERVER": "127.0.0.1",
                "RFC2136_PORT": "5353",
                "RFC2136_ZONE": "test.a4c.internal",
                "RFC2136_KEY_NAME": "k",
                "RFC2136_KEY_SECRET": TSIG_SECRET,
            },
            RFC2136DNSProvider,
            ResolverDNSVerifier,
            LoggingMailer,
        ),
    ],
)
def test_development_mode_and_overrides_select_providers(
    environ: dict[str, str], dns: type, verifier: type, mailer: type
) -> None:
    settings = load_settings({**DEVELOPMENT, **environ})
    assert settings.workflow_mode == "development"
    providers = build_providers(settings)
    assert (type(providers.dns), type(providers.verifier), type(providers.mailer)) == (
        dns,
        verifier,
        mailer,
    )


def test_production_selects_real_providers_and_overrides_win() -> None:
    providers = build_providers(load_settings(PRODUCTION))
    assert (type(providers.dns), type(providers.verifier), type(providers.mailer)) == (
        RFC2136DNSProvider,
        ResolverDNSVerifier,
        SMTPMailer,
    )
    cloudflare = {
        **PRODUCTION,
        "DNS_PROVIDER": "cloudflare",
        "CLOUDFLARE_API_TOKEN": CLOUDFLARE_TOKEN,
        "CLOUDFLARE_ZONE_ID": "zone-1",
        "DNS_NAMESERVERS": "ns1.cf.test,[::1]:5353",
        "EMAIL_PROVIDER": "logging",
    }
    settings = load_settings(cloudflare)
    assert [(ns.host, ns.port) for ns in settings.resolved_nameservers] == [
        ("ns1.cf.test", 53),
        ("::1", 5353),
    ]
    providers = build_providers(settings)
    assert type(providers.dns) is CloudflareDNSProvider
    assert type(providers.mailer) is LoggingMailer


def test_identity_providers_are_reached_by_production_rules_unless_configured() -> None:
    production = build_sso_policy(load_settings(PRODUCTION))
    assert (production.allow_http, production.allow_private) == (False, False)
    # Production keeps https whatever SSO_ALLOW_PRIVATE_ADDRESSES says.
    private = build_sso_policy(load_settings({**PRODUCTION, "SSO_ALLOW_PRIVATE_ADDRESSES": "true"}))
    assert (private.allow_http, private.allow_private) == (False, True)
    development = build_sso_policy(load_settings(DEVELOPMENT))
    assert (development.allow_http, development.allow_private) == (True, False)


def test_email_domain_challenges_are_read_through_the_configured_or_system_resolvers() -> None:
    system = build_providers(load_settings(PRODUCTION)).txt
    assert isinstance(system, ResolverTXTLookup) and system.nameservers == []
    configured = load_settings({**PRODUCTION, "EMAIL_DOMAIN_NAMESERVERS": "10.0.0.53,[::1]:5353"})
    txt = build_providers(configured).txt
    assert isinstance(txt, ResolverTXTLookup)
    assert [(ns.host, ns.port) for ns in txt.nameservers] == [("10.0.0.53", 53), ("::1", 5353)]
    assert configured.masked()["EMAIL_DOMAIN_NAMESERVERS"] == ["10.0.0.53:53", "::1:5353"]


def test_application_env_carries_store_settings_and_passthrough() -> None:
    env = application_env(load_settings(PRODUCTION))
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_HOST"] == "db.example.test"
    assert env["POSTGRES_PASSWORD"] == PG_PASSWORD
    assert env["POSTGRES_POOL_SIZE"] == "7"  # eventsourcing's own knobs pass through
    assert env["A4C_TOKEN_SECRET"] == TOKEN_SECRET
    sqlite = application_env(load_settings({**DEVELOPMENT, "SQLITE_DBNAME": "/tmp/x.sqlite"}))
    assert sqlite["SQLITE_DBNAME"] == "/tmp/x.sqlite"
    assert "POSTGRES_HOST" not in sqlite


def test_a_replicated_store_reaches_the_worker_as_host_and_port_lists() -> None:
    """A pg_auto_failover or Patroni cluster: libpq's multi-host form, as the projector
    and the API read it (a4c_domain.persistence), with the session attributes passed on."""
    replicated = {
        **PRODUCTION,
        "POSTGRES_HOST": "db1.example.test,db2.example.test",
        "POSTGRES_PORT": "5432,5433",
        "POSTGRES_TARGET_SESSION_ATTRS": "read-write",
    }
    env = application_env(load_settings(replicated))
    assert env["POSTGRES_HOST"] == "db1.example.test,db2.example.test"
    assert env["POSTGRES_PORT"] == "5432,5433"
    assert env["POSTGRES_TARGET_SESSION_ATTRS"] == "read-write"


def test_links_follow_settings() -> None:
    links = build_links(load_settings(PRODUCTION))
    assert links.zone == "orgs.example.test"
    assert links.dns_target == "ingress.example.test"
    assert links.mail_domain == "mail.example.test"
    assert links.accept_url("abc").startswith("https://app.example.test/invitations/accept?")
    # Unset: the mails name the sender as support, and no operators' address is mailed.
    assert links.support_address == load_settings(PRODUCTION).from_address
    assert links.provisioning_failed_mail_to is None
    mails = build_links(
        load_settings(
            {
                **PRODUCTION,
                "SUPPORT_EMAIL": "Help@Example.com",
                "PROVISIONING_FAILED_MAIL_TO": "ops@example.com",
            }
        )
    )
    assert (mails.support_address, mails.provisioning_failed_mail_to) == (
        "help@example.com",
        "ops@example.com",
    )


SECRETS = (TOKEN_SECRET, SMTP_PASSWORD, PG_PASSWORD, CLOUDFLARE_TOKEN, TSIG_SECRET, PAYLOAD_KEY)


def test_secrets_never_appear_in_repr_str_masked_view_or_logs() -> None:
    settings = load_settings(
        {**PRODUCTION, "CLOUDFLARE_API_TOKEN": CLOUDFLARE_TOKEN, "POSTGRES_SECRET_X": "zz-unique"}
    )
    masked = settings.masked()
    assert masked["SMTP_PASSWORD"] == MASK
    assert masked["PERSISTENCE_EXTRA"]["POSTGRES_SECRET_X"] == MASK

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    log = logging.getLogger("test.config.secrets")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("settings %s %r", settings, settings, extra={"settings": settings})
        log.info("masked %s", masked)
    finally:
        log.removeHandler(handler)

    rendered = "\n".join([repr(settings), str(settings), str(masked), stream.getvalue()])
    assert "smtp.example.test" in rendered  # the non-secret values are there...
    for secret in (*SECRETS, "zz-unique"):
        assert secret not in rendered  # ...the secrets are not


def test_errors_do_not_echo_rejected_secret_values() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**PRODUCTION, "A4C_TOKEN_SECRET": "too-short-but-secret"})
    assert "too-short-but-secret" not in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        load_settings({**PRODUCTION, "RFC2136_KEY_SECRET": "secret-but-not-b64!"})
    assert "secret-but-not-b64!" not in str(caught.value)

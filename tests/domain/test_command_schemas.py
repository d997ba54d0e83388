"""The JSON Schema of each field type says exactly what its validator accepts.

The API's OpenAPI document is built from these schemas, and a generated client or a
fuzzer trusts them: a value the schema allows must be accepted, one it refuses must be
refused. Checked with the validator OpenAPI tools use (jsonschema-rs, Unicode property
escapes included) on generated text, near misses included.
"""

from __future__ import annotations

import string
import unicodedata
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from a4c_domain.commands import (
    RESERVED_SLUGS,
    Email,
    Hostname,
    Name,
    OrganizationName,
    PersonName,
    Reason,
    Slug,
    Tags,
)

# Characters a rule looks at, oversampled: whitespace, controls, marks, dots, letters.
EDGY = (
    " \t\n\x1c\x85\xa0\u2003\u2028\u200b\ufeff\x00\x7f\u0301\u0903.-'\u2019_:@"
    + string.ascii_letters
    + string.digits
    + "éßЖ中"
)
# Code points this Python's Unicode tables know, and no surrogates (JSON cannot carry
# them): one unassigned here (Cn) may be a letter in the newer tables of the schema's
# regex engine (U+31350, assigned in Unicode 15), and the two would then disagree about
# the Unicode version, not the rule.
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cn", "Cs")), max_size=12),
    st.text(alphabet=EDGY, max_size=12),
    st.text(alphabet=EDGY, min_size=95, max_size=110),
)
labels = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=64)
hostnames = st.one_of(
    st.lists(labels, min_size=1, max_size=5).map(".".join),
    st.builds(
        lambda h, dots: h + "." * dots,
        st.lists(labels, min_size=2).map(".".join),
        st.integers(0, 3),
    ),
    texts,
)
slugs = st.one_of(
    st.from_regex(r"\A[a-z0-9-]{1,64}\Z"), st.sampled_from(sorted(RESERVED_SLUGS)), texts
)
emails = st.one_of(st.emails(), texts, st.just("Ada@Example.COM"))
tags = st.lists(st.one_of(st.from_regex(r"\A[a-z0-9_.:A-Z-]{0,64}\Z"), texts), max_size=22)

CHECKED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdicts(field_type: Any, value: Any) -> tuple[bool, bool]:
    """Whether the type's JSON Schema allows ``value``, and whether its validator does."""
    adapter = TypeAdapter(field_type)
    schema = adapter.json_schema()
    allowed = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return allowed, False
    return allowed, True


def _agree(field_type: Any, value: Any) -> None:
    allowed, accepted = _verdicts(field_type, value)
    assert allowed == accepted, (value, "schema allows" if allowed else "schema refuses")


@pytest.mark.parametrize(
    "field_type",
    [Name, Reason, PersonName, OrganizationName],
    ids=["Name", "Reason", "PersonName", "OrganizationName"],
)
@CHECKED
@given(value=texts)
@example(value=" Ada Lovelace ")
@example(value="J. R. R. Tolkien")
@example(value="evil.example")
@example(value="a" * 100 + " ")
@example(value="evil\ua4f8com")
@example(value="evil.\ufb01")
@example(value="Smith & Sons, Ltd.")
@example(value="Acme 10.0.0.1")
@example(value="Acme\u00b2")
@example(value="3M")
def test_texts(field_type: Any, value: str) -> None:
    renormalised = unicodedata.normalize("NFKC", value.strip()) != value.strip()
    if field_type in (PersonName, OrganizationName) and renormalised:
        # One way only: a person's name is also checked as NFKC makes it ("evil.\ufb01" is
        # "evil.fi"), which no pattern can state; the pattern checks the name as written.
        allowed, accepted = _verdicts(field_type, value)
        assert allowed or not accepted, value
        return
    _agree(field_type, value)


@CHECKED
@given(value=slugs)
@example(value="ab--c")
@example(value="xn--c")
def test_slugs(value: str) -> None:
    _agree(Slug, value)


@CHECKED
@given(value=hostnames)
@example(value="Acme.Orgs.Example.COM.")
@example(value="a." * 126 + "bc")
def test_hostnames(value: str) -> None:
    _agree(Hostname, value)


@CHECKED
@given(value=tags)
def test_tags(value: list[str]) -> None:
    _agree(Tags, value)


@CHECKED
@given(value=emails)
@example(value="0@0")
@example(value="ada@example.test")
@example(value="Ada.Lovelace+x@Example.COM")
def test_emails(value: str) -> None:
    """One way only: international addresses are taken too, beyond the pattern."""
    allowed, accepted = _verdicts(Email, value)
    assert accepted or not allowed, value

"""Search attributes: how an operator finds an organization's workflows in Temporal.

Every bootstrap and invitation workflow carries its organization's id, slug and tags,
so the Web UI, ``temporal workflow list --query 'OrganizationSlug="acme"'`` and
``Client.list_workflows`` list one organization's workflows (the invitation workflows'
ids, ``invitation-<uuid>``, say nothing about their organization).

Never an e-mail address, nor anything else personal: visibility storage is an index
kept after a workflow closes, shown to anyone who can list workflows. Slugs and tags
cannot hold one (the domain allows neither ``@`` in a slug nor in a tag).

A cluster accepts only attributes registered on its namespace: ``a4c dev`` and the
tests' dev server register :data:`SEARCH_ATTRIBUTES` when they start
(:func:`dev_server_args`); production registers them once per namespace
(:func:`create_commands`, quoted in docs/operating.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

ORGANIZATION_ID = SearchAttributeKey.for_keyword("OrganizationId")
ORGANIZATION_SLUG = SearchAttributeKey.for_keyword("OrganizationSlug")
ORGANIZATION_TAGS = SearchAttributeKey.for_keyword_list("OrganizationTags")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str] | SearchAttributeKey[Sequence[str]], ...] = (
    ORGANIZATION_ID,
    ORGANIZATION_SLUG,
    ORGANIZATION_TAGS,
)

# The type names the ``temporal`` CLI takes (``--search-attribute Name=Type``, ``--type``).
_CLI_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def organization_search_attributes(
    organization_id: UUID, slug: str | None = None, tags: Sequence[str] = ()
) -> TypedSearchAttributes:
    """The attributes of a workflow that works for this organization (what is known of it).

    An attribute with no value is left out rather than set empty: ``OrganizationSlug=""``
    would match nothing useful and only clutter the index.
    """
    pairs: list[SearchAttributePair[str] | SearchAttributePair[Sequence[str]]] = [
        SearchAttributePair(ORGANIZATION_ID, str(organization_id))
    ]
    if slug:
        pairs.append(SearchAttributePair(ORGANIZATION_SLUG, slug))
    if tags:
        pairs.append(SearchAttributePair(ORGANIZATION_TAGS, list(tags)))
    return TypedSearchAttributes(pairs)


def organization_query(slug: str) -> str:
    """The visibility query listing one organization's workflows, by its slug."""
    # A slug is lowercase letters, digits and '-' (the domain's rule): nothing to escape.
    return f'{ORGANIZATION_SLUG.name} = "{slug}"'


def dev_server_args() -> list[str]:
    """``temporal server start-dev`` arguments registering every attribute at start."""
    return [
        arg
        for key in SEARCH_ATTRIBUTES
        for arg in ("--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type]}")
    ]


def create_commands(namespace: str = "default") -> list[str]:
    """The ``temporal operator`` commands registering them on a cluster's namespace."""
    return [
        f"temporal operator search-attribute create --namespace {namespace} "
        f"--name {key.name} --type {_CLI_TYPE[key.indexed_value_type]}"
        for key in SEARCH_ATTRIBUTES
    ]

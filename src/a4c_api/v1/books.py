"""Per organization, a book of what this replica did that the read models may not show
yet, checked one request at a time (the mail limits, the webhook endpoint limit).

A limit is counted on the read models plus this replica's own writes they do not show
yet; checking and writing under the organization's lock makes each check see every
earlier write of this replica. Organizations are a fixed set (they exist, and the caller
administers them), and one leaves the books with its last entry and its last checker, so
nothing here grows with what callers send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from fastapi import Request


@dataclass
class OrganizationBook:
    """The lock one organization's checks take, and how many hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0

    def empty(self) -> bool:
        """Nothing left to remember (the book may go once nobody checks it)."""
        raise NotImplementedError


B = TypeVar("B", bound=OrganizationBook)


class OrganizationBooks(Generic[B]):
    def __init__(self, new: Callable[[], B]) -> None:
        self._new = new
        self._books: dict[UUID, B] = {}

    @contextlib.asynccontextmanager
    async def checking(self, organization_id: UUID) -> AsyncIterator[B]:
        """The organization's book, to one request at a time: read, check and write
        within, so that each check sees every earlier write of this replica."""
        book = self._books.setdefault(organization_id, self._new())
        book.users += 1
        try:
            async with book.lock:
                yield book
        finally:
            book.users -= 1
            self.tidy(organization_id, book)

    def get(self, organization_id: UUID) -> B | None:
        return self._books.get(organization_id)

    def tidy(self, organization_id: UUID, book: B) -> None:
        if not book.users and book.empty() and self._books.get(organization_id) is book:
            del self._books[organization_id]


T = TypeVar("T")


def app_state(request: Request, name: str, new: Callable[[], T], kind: type[T]) -> T:
    """The app's ``name`` (one per app, so one per replica), made by ``new`` on first use."""
    found = getattr(request.app.state, name, None)
    if not isinstance(found, kind):
        found = new()
        setattr(request.app.state, name, found)
    return found

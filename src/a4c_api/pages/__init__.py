"""The invitee's pages (HTML): the accept link from the e-mail, sign-in, accept, done."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

"""The ``/v1`` JSON API for organization admins, platform operators and other services."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")

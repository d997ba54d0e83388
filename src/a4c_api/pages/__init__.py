"""The invitee's pages (HTML): the accept link from the e-mail, sign-in, accept, done.

:data:`router` serves them all: :mod:`.accept` (the invitation's page and Accept),
:mod:`.signin` (dev and OpenID sign-in, sign-out), :mod:`.sso_accept` (accepting through
the organization's own provider), :mod:`.sso_test` (an admin's test of that provider),
:mod:`.assets` (the stylesheet).
Every POST reads its form and checks its CSRF token by one dependency
(:data:`.forms.CheckedForm`). Why they work as they do: docs/design/pages.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from a4c_api.pages import accept, assets, signin, sso_accept, sso_test

router = APIRouter(include_in_schema=False)
for _part in (accept, signin, sso_accept, sso_test, assets):
    router.include_router(_part.router)

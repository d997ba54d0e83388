"""Where the invitee pages are served: one constant per path, and the map templates link by."""

from __future__ import annotations

from a4c_worker.config import ACCEPT_PATH

SIGN_IN_DEV_PATH = "/sign-in/dev"
SIGN_IN_OIDC_PATH = "/sign-in/oidc"
# Register ``API_PUBLIC_URL`` + this as the client's redirect URI at the provider.
OIDC_CALLBACK_PATH = "/sign-in/oidc/callback"
SIGN_OUT_PATH = "/sign-out"
# An invitee's sign-in through their organization's own provider (it comes back to
# SSO_CALLBACK_PATH, and accepts the invitation).
SIGN_IN_SSO_PATH = "/sign-in/sso"
# An organization's single sign-on test (its admins), and where its provider sends them
# back: register ``API_PUBLIC_URL`` + SSO_CALLBACK_PATH at the organization's provider.
SSO_TEST_PATH = "/sso/test"
SSO_CALLBACK_PATH = "/sso/callback"
STYLESHEET_PATH = "/assets/a4c.css"
# What the templates call each path (``{{ paths.accept }}``).
PATHS = {
    "accept": ACCEPT_PATH,
    "sign_in_dev": SIGN_IN_DEV_PATH,
    "sign_in_oidc": SIGN_IN_OIDC_PATH,
    "sign_in_sso": SIGN_IN_SSO_PATH,
    "sign_out": SIGN_OUT_PATH,
    "css": STYLESHEET_PATH,
}

"""What a route finds on the app it runs in: the gateway, the settings, the metrics.

Set by :func:`a4c_api.app.create_app`; read here so the routers (pages, ``/v1``) need
not import the module that includes them.
"""

from __future__ import annotations

from starlette.requests import Request

from a4c_api.gateway import Gateway
from a4c_api.observability import ApiMetrics
from a4c_api.settings import ApiSettings


def gateway_of(request: Request) -> Gateway:
    found = request.app.state.gateway
    assert isinstance(found, Gateway)
    return found


def settings_of(request: Request) -> ApiSettings:
    found = request.app.state.settings
    assert isinstance(found, ApiSettings)
    return found


def metrics_of(request: Request) -> ApiMetrics:
    found = request.app.state.metrics
    assert isinstance(found, ApiMetrics)
    return found

"""What every a4c process shares that is not the domain: the service layer.

Settings from the environment (``settings``), logging set-up (``logs``), the process's
own metrics (``metrics``), the probe/metrics HTTP server (``probes``), listings as tables
or spreadsheet-safe CSV (``tabular``) and the console scripts' conventions (``cli``). It
sits on ``a4c_domain`` and below every process, and uses only what they all have
(pydantic, pydantic-settings, prometheus_client): see docs/design/service.md.
"""

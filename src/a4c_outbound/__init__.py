"""Requests to URLs a customer chose, without becoming a way into our own network (SSRF).

``a4c_outbound.transport`` holds the rules and the connection guard. The webhook daemon
posts deliveries through it, the API checks endpoint URLs with it, and the SSO provider
checks (``a4c_sso``), which the worker's activities run, fetch through it: so it sits
below the worker, importing nothing of the project.
"""

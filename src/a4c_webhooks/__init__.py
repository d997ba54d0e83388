"""a4c-webhooks: delivers public events to webhook endpoints (the Standard Webhooks specification).

It tails the projector's public-events read model (positions the no-skip guard has
passed, the same rows ``GET /v1/events`` serves), so it never skips an event, and it
delivers each to every matching endpoint at least once, in order per organization and
endpoint, signed with the endpoint's secret.
"""

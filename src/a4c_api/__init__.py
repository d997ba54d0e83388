"""a4c's HTTP front door (``a4c-api``): the invitee pages and the ``/v1`` JSON API.

It writes nothing itself: every change goes through the workflows (``a4c_worker.client``);
every read comes from the projector's read models (``a4c_projector.queries``). Built
with FastAPI, so the ``/v1`` routes take and return the same pydantic models the
workflows do and are documented at ``/docs`` (OpenAPI) without a second description.
"""

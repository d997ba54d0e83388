"""The Temporal service: what runs in a worker pod, and the operator commands that steer it.

``workflows`` (deterministic, sandboxed) call ``activities`` through ``contracts`` (the
activities' inputs and outputs); the activities use the ``providers`` (DNS, e-mail) and
the domain library. ``cli`` is ``a4c-worker`` (``run`` and the operator commands),
``runner``/``worker``/``wiring`` build the running worker from ``config``. The ``a4c``
tool that drives both daemons is ``a4c_tool``; nothing here imports it.
"""

"""The `a4c` tool: the local dev stack, the demo, tagged entities and validate.

It drives both daemons and sits on top of every other a4c package; nothing imports it.
"""

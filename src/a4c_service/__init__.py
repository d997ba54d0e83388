"""What both daemons and the tool share that is not the domain: standard library only.

The probe/metrics HTTP server (``probes``), listings as tables or spreadsheet-safe
CSV (``tabular``) and the console scripts' help conventions (``cli``). It sits below
``a4c_worker``, ``a4c_projector`` and ``a4c_tool`` and imports no other a4c package, so
the rule ``a4c_worker -> a4c_domain <- a4c_projector`` stays as it is.
"""

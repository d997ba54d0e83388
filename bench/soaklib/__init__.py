"""The soak's parts (``bench/soak.py``): the stack it runs, the load, the faults, the checker.

Kept in a package beside the benches, not in ``src/``: nothing here ships; the soak
imports the test servers' harnesses (``tests/servers``) from the repository root.
"""

"""How the console scripts (``a4c``, ``a4c-worker``) end: flushed, then at once.

A process that created a Temporal client can abort while the interpreter finalizes:
the SDK runtime's threads call into Python after it began tearing down
(``Fatal Python error: PyGILState_Release``, SIGABRT, exit 134 — temporalio/sdk-python
#300). So the entry points do what a normal exit does up to that point — wait for
non-daemon threads, run ``atexit`` handlers (logging, tracing exporters), flush
stdout and stderr — and then leave with ``os._exit``, skipping only the finalization.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn

from a4c_service.cli import INTERRUPTED


def run_and_exit(main: Callable[[], int]) -> NoReturn:
    """Run a console script's ``main`` and end the process with its exit code."""
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors (2) and --help (0)
        code = _system_exit_code(exc)
    except KeyboardInterrupt:
        code = INTERRUPTED
    except BaseException:
        traceback.print_exc()
        code = 1
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nobody to tell
            stream.flush()
    os._exit(code)


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1

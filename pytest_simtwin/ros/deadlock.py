"""A bound on destroying DDS entities: Fast DDS can deadlock for good while a remote participant leaves.

eProsima/Fast-DDS#6502 (open): a receive thread that removes a departed participant's writers holds
the PDP lock while it waits for the event thread, which waits for that lock to send the next
announcement. The participant never recovers, and destroying any of its endpoints then waits on the
event thread forever, holding the GIL (seen: a worker of `pytest -n 8` stuck in
``Publisher.destroy`` after the test's node under test had exited; the whole run hung).

No Python thread can act while the GIL is held, so the bound is :mod:`faulthandler`'s C watchdog:
past ``seconds`` it writes every thread's stack to stderr (xdist shows it) and ends the process with
status 1. A worker then shows as crashed in its last test instead of hanging the run until the CI
job's timeout; its simulator and nodes exit with it (parent-death signal), its lease is reclaimed by
pid. faulthandler has one such timer per process: arming it cancels pytest's own
``faulthandler_timeout`` timer for the rest of that test's teardown.
"""

from __future__ import annotations

import contextlib
import faulthandler
import sys
from collections.abc import Iterator

#: Seconds a whole RosSession.close may take (~20 ms normally; minutes only when deadlocked).
TEARDOWN_LIMIT = 30.0


@contextlib.contextmanager
def deadlock_watchdog(seconds: float = TEARDOWN_LIMIT) -> Iterator[None]:
    """End this process (status 1, stacks on stderr) if the block takes longer than ``seconds``."""
    try:
        # the dump's first frames name this block: the docstring above says why it ended
        faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__ or sys.stderr)
    except (ValueError, AttributeError, OSError):  # no usable stderr (a daemon, a closed fd): unguarded
        yield
        return
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()

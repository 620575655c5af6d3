"""Giving freed memory back to the system.

CPython hands large objects (request bodies, upload buffers, listings) to the
C library's `malloc`, which keeps what they free for reuse: after a burst of
work (a large push, a catalog walk) the process stays at its highest size,
though nothing uses that memory any more. Go's runtime returns such memory
to the system in the background; here `IdleTrim` does it with glibc's
`malloc_trim` once the server has had no request for a moment, when the
call (well under a millisecond) slows nobody down.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable
from typing import Final

__all__ = ["IDLE_DELAY", "IdleTrim", "malloc_trim", "trim_now"]

IDLE_DELAY: Final = 1.0
"""Seconds without a request after which freed memory is given back."""


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`: frees the unused pages of every heap; None
    where the C library has no such call (musl, macOS)."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


def trim_now() -> None:
    """Give back what is free now (after start-up: the imports' temporaries,
    the configuration's parsing)."""
    trim = malloc_trim()
    if trim is not None:
        trim()


class IdleTrim:
    """Calls `trim` once the requests `started` have all `finished` and none
    has started for `delay` seconds; once per quiet spell, and only after
    some request ran (only a finishing request arms the timer). Lives on the
    event loop of the requests it counts.

    Per request it costs a counter update or two and a clock read: the timer
    is armed when the count falls to zero and none is pending, and re-armed
    from its own callback while requests keep coming.
    """

    def __init__(self, trim: Callable[[], object], delay: float = IDLE_DELAY) -> None:
        self._trim = trim
        self._delay = delay
        self._active = 0
        self._quiet_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def started(self) -> None:
        self._active += 1

    def finished(self) -> None:
        self._active -= 1
        if self._active == 0:
            loop = asyncio.get_running_loop()
            self._quiet_since = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(self._quiet_since + self._delay, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._active:
            return  # the last of them to finish arms the timer again
        loop = asyncio.get_running_loop()
        due = self._quiet_since + self._delay
        if loop.time() < due:
            self._timer = loop.call_at(due, self._check)
        else:
            self._trim()

    def close(self) -> None:
        """Disarm the timer (the loop is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""Stopping a run from outside: Ctrl-C (SIGINT) and SIGTERM (what `kill`, `timeout`, Slurm and
Kubernetes send) both raise KeyboardInterrupt in the main thread, so every command keeps what it has
written and frees its lock the same way; the exit code tells them apart (130 and 143, 128 + signal).

A signal that arrives while Python runs a finaliser (`__del__`) would raise there, where Python prints
the exception and swallows it and the run goes on; such a stop is delivered again a moment later,
once the finaliser has returned."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

RETRY_SECONDS = 0.05  # how soon a stop that arrived inside a finaliser is delivered again
_received: int | None = None
_installed = False


def install() -> None:
    """Handle SIGINT and SIGTERM as stops from now on (a signal the process was started ignoring, as
    background jobs ignore SIGINT, stays ignored)."""
    global _installed
    _installed = True
    for number in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _stop)
    signal.signal(signal.SIGALRM, _deliver_again)


def reclaim() -> None:
    """`install` again where it was installed: after a library replaced the handlers (Ray's core worker
    puts in a SIGTERM handler that exits at once, keeping nothing)."""
    if _installed:
        install()


def reason() -> str:
    """'terminated' after SIGTERM, else 'interrupted' (Ctrl-C)."""
    return "terminated" if _received == signal.SIGTERM else "interrupted"


def exit_code() -> int:
    """The shell's code for the stop: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (_received or signal.SIGINT)


def exit_stopped(message: str) -> None:
    """Print `error: message` and exit with `exit_code()`, once the stop has unwound the run (every
    `finally` and `with` block has run: rows flushed, temporary files removed, locks freed).

    It exits at once (`os._exit`) because CPython kills its own process with SIGINT at exit, whatever
    the code given to `sys.exit`, once a KeyboardInterrupt has escaped Python code that C code ran
    (seen when the stop lands in an import), even though the command caught it."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code())


def _stop(number: int, frame: FrameType | None) -> None:
    global _received
    _received = number
    if _in_finaliser(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    raise KeyboardInterrupt


def _deliver_again(_number: int, frame: FrameType | None) -> None:
    _stop(_received or signal.SIGINT, frame)


def _in_finaliser(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False

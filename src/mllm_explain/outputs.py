"""Output folders written safely: every file appears whole (written under a temporary name beside
it, then renamed over it) and one run at a time writes a folder (a lock file in it).

The lock is an OS file lock (`filelock`), so the lock of a run that dies, even by SIGKILL, is free
at once; the lock file itself stays behind, empty and harmless.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mllm_explain.errors import UserError

LOCK_NAME = ".mllm-explain.lock"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` (same suffix, so writers that infer a format from it work) to
    write to; renamed over `path` when the block succeeds and removed when it fails, so neither a
    reader nor an interruption ever sees a half-written `path`."""
    path = Path(path)
    temp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """`path.write_text(text)` (UTF-8), atomically."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def prepare_folder(out: Path) -> Path:
    """Create the output folder `out` if needed; refuse a path that is a file or a folder this
    process cannot write to, before any work is done for it."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise UserError(f"the output folder {out} is a file")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to the output folder {out}: permission denied")
    return out


@contextmanager
def locked_folder(out: Path) -> Iterator[Path]:
    """`prepare_folder(out)` and hold its lock for the block; a folder another live run holds is
    refused.  Re-entrant within one process, so a command can hold the lock from its start while
    the library calls it runs take it again."""
    out = prepare_folder(out)
    lock = FileLock(str(out.resolve() / LOCK_NAME), timeout=0, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"the output folder {out} is in use by another mllm-explain run; wait for it to finish "
                        "or choose another --out") from None
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {out}: {exc.strerror or exc}") from None
    try:
        yield out
    finally:
        lock.release()

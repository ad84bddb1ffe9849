"""Output folders: files appear whole or not at all, one live run per folder, and a folder that
cannot be written is refused before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mllm_explain.errors import UserError
from mllm_explain.outputs import LOCK_NAME, atomic_path, locked_folder, prepare_folder, write_text

HOLD_LOCK = ("import sys, time; from mllm_explain.outputs import locked_folder\n"
             "with locked_folder(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)")


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "data.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temp:
            temp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]
    write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓" and len(list(tmp_path.iterdir())) == 1


def test_a_file_or_a_path_below_a_file_is_refused(tmp_path):
    (tmp_path / "report").write_text("not a folder")
    with pytest.raises(UserError, match="is a file"):
        prepare_folder(tmp_path / "report")
    with pytest.raises(UserError, match="cannot create the output folder"):
        prepare_folder(tmp_path / "report" / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(UserError, match="cannot write"):
        prepare_folder(folder)


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with locked_folder(tmp_path / "out") as out, locked_folder(out):
        assert (out / LOCK_NAME).exists()


def test_a_folder_held_by_a_live_run_is_refused_and_a_dead_runs_lock_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match="in use by another mllm-explain run"):
            with locked_folder(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without releasing anything itself
        holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()
    with locked_folder(tmp_path) as out:
        assert out == Path(tmp_path)

"""Interrupted and concurrent runs of the command line, as real processes: Ctrl-C is exit code 130
with one line and keeps what was written; a second run into a folder in use is refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mllm_explain.cli import main
from mllm_explain.data.synth import write_dataset
from mllm_explain.outputs import LOCK_NAME

MAIN = "from mllm_explain.cli import main; main()"


def start(*args: str) -> subprocess.Popen:
    """`mllm-explain ARGS` in a new process, with Python's own Ctrl-C handling even where the test
    runner was started with SIGINT ignored (background jobs)."""
    return subprocess.Popen([sys.executable, "-c", MAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr  # no traceback, nothing else
    return lines[0]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=3, seed=0, split="test")
    return folder


def test_ctrl_c_stops_explain_with_130_and_writes_nothing_half(tmp_path):
    process = start("explain", "examples/scene.png", "--out", str(tmp_path))
    wait_for(lambda: (tmp_path / LOCK_NAME).exists(), process)  # inside the command, before the model loads
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert one_error_line(stderr) == "error: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]


def test_ctrl_c_stops_evaluate_with_130_keeping_rows_for_a_resume(scenes, tmp_path, capsys):
    args = ["evaluate", "--data", str(scenes), "--methods", "logit_lens,tam", "--no-faithfulness",
            "--out", str(tmp_path)]
    process = start(*args)
    samples = tmp_path / "samples.jsonl"
    wait_for(lambda: samples.exists() and samples.stat().st_size > 0, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    line = one_error_line(stderr)
    assert line.startswith("error: interrupted:") and "of 3 samples are complete" in line
    assert "rerun the same command" in line
    assert not (tmp_path / "summary.json").exists()
    kept = samples.read_text().splitlines()
    assert kept and json.loads(kept[0])["method"] == "generation"
    with pytest.raises(SystemExit) as exit_:  # the same command again resumes
        main(args)
    assert exit_.value.code == 0, capsys.readouterr().err
    final = [json.loads(line) for line in samples.read_text().splitlines()]
    pairs = Counter((r["sample_id"], r["method"]) for r in final)
    assert max(pairs.values()) == 1 and Counter(m for _, m in pairs) == {"generation": 3, "logit_lens": 3, "tam": 3}
    assert final[0] == json.loads(kept[0])  # rows written before the interrupt are kept as they were


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, capsys):
    first = start("explain", "examples/scene.png", "--method", "tam", "--out", str(tmp_path))
    wait_for(lambda: (tmp_path / LOCK_NAME).exists(), first)
    time.sleep(0.5)  # the lock file is created, then locked
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "examples/scene.png", "--method", "logit_lens", "--out", str(tmp_path)])
    stderr = capsys.readouterr().err
    assert exit_.value.code == 2 and "in use by another mllm-explain run" in one_error_line(stderr)
    _, first_stderr = first.communicate(timeout=600)
    assert first.returncode == 0, first_stderr
    tokens = json.loads((tmp_path / "tokens.json").read_text())
    assert tokens["method"] == "tam"
    with np.load(tmp_path / "maps.npz") as arrays:  # whole: every array reads back (CRC checked)
        assert arrays["grid_maps"].shape[0] == len(tokens["tokens"])
    assert len(list((tmp_path / "words").glob("*.png"))) == len(tokens["words"])
    assert not [p for p in Path(tmp_path).rglob("*") if ".tmp" in p.name]

"""Interrupted and concurrent runs of the command line, as real processes: Ctrl-C (exit code 130) and
SIGTERM (143) are one line at any moment, the imports included, and keep what was written, with the
lock freed for a rerun that resumes; a second run into a folder in use is refused."""

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
from mllm_explain.evaluation.runner import COST_FIELDS as COST
from mllm_explain.outputs import LOCK_NAME

STOPS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]


def start(*args: str) -> subprocess.Popen:
    """`mllm-explain ARGS` in a new process (the installed entry point's module), with Python's own
    Ctrl-C handling even where the test runner was started with SIGINT ignored (background jobs)."""
    return subprocess.Popen([sys.executable, "-m", "mllm_explain", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


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


@pytest.mark.parametrize("stop, code, word", STOPS)
@pytest.mark.parametrize("delay", [0.2, 1.0])
def test_a_stop_while_the_imports_load_is_one_line(tmp_path, stop, code, word, delay):
    """Signalled before the command starts its work (torch and transformers still loading: no lock yet)."""
    process = start("explain", "examples/scene.png", "--out", str(tmp_path))
    time.sleep(delay)
    assert process.poll() is None and not (tmp_path / LOCK_NAME).exists()
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert one_error_line(stderr) == f"error: {word}"
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize("stop, code, word", STOPS)
def test_a_stop_ends_explain_with_one_line_and_writes_nothing_half(tmp_path, stop, code, word):
    process = start("explain", "examples/scene.png", "--out", str(tmp_path))
    wait_for(lambda: (tmp_path / LOCK_NAME).exists(), process)  # inside the command, before the model loads
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert one_error_line(stderr) == f"error: {word}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]


@pytest.mark.parametrize("stop, code, word", STOPS)
def test_a_stop_ends_evaluate_keeping_rows_and_a_rerun_resumes_to_the_same_summary(scenes, tmp_path, capsys, stop,
                                                                                    code, word):
    args = ["evaluate", "--data", str(scenes), "--methods", "logit_lens,tam", "--no-faithfulness",
            "--out", str(tmp_path)]
    process = start(*args)
    samples = tmp_path / "samples.jsonl"
    wait_for(lambda: samples.exists() and samples.stat().st_size > 0, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    line = one_error_line(stderr)
    assert line.startswith(f"error: {word}:") and "of 3 samples are complete" in line
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
    if stop == signal.SIGTERM:  # the resumed run's summary is the uninterrupted run's
        with pytest.raises(SystemExit) as exit_:
            main([*args[:-1], str(tmp_path / "whole")])
        assert exit_.value.code == 0
        assert without_cost(json.loads((tmp_path / "summary.json").read_text())) == without_cost(
            json.loads((tmp_path / "whole" / "summary.json").read_text()))


def without_cost(value):
    """A summary without its measured time and memory (which differ from run to run)."""
    if isinstance(value, dict):
        return {k: without_cost(v) for k, v in value.items() if k not in COST}
    return [without_cost(v) for v in value] if isinstance(value, list) else value


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

"""`mllm-explain evaluate --workers 2` on a local Ray with two CPU actors, on six synthetic scenes and
the bundled model: the same rows and summary as one process, also when an actor is killed mid-run;
without ray, one line naming the extra."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mllm_explain.cli import app, main
from mllm_explain.data.synth import write_dataset
from mllm_explain.evaluation.runner import COST_FIELDS as COST
from mllm_explain.evaluation.runner import Evaluation

needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed (the distributed extra)")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=6, seed=0, split="test")
    return folder


def evaluate(scenes: Path, out: Path, *extra: str):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(scenes), "--methods", "tam,logit_lens",
                                      "--no-faithfulness", "--hallucination", "--out", str(out), *extra])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def single(scenes, tmp_path_factory):
    """The single-process run's folder."""
    out = tmp_path_factory.mktemp("single")
    evaluate(scenes, out)
    return out


def assert_same_run(single: Path, out: Path) -> None:
    """Every (sample_id, method) row exactly once, each as the single-process run's but for its cost,
    and the same summary but for the cost."""
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    want = [json.loads(line) for line in (single / "samples.jsonl").read_text().splitlines()]
    assert max(Counter((r["sample_id"], r["method"]) for r in rows).values()) == 1
    assert len(rows) == len(want) == 6 * 4  # generation, two methods, hallucination
    assert_same_leaves(flat({(r["sample_id"], r["method"]): r for r in rows}),
                       flat({(r["sample_id"], r["method"]): r for r in want}))
    assert_same_leaves(flat(json.loads((out / "summary.json").read_text())),
                       flat(json.loads((single / "summary.json").read_text())))


def flat(value, path: tuple = ()) -> dict:
    """Nested dicts and lists as {path: leaf}, leaving out the costs."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key not in COST for k, v in flat(item, (*path, key)).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, (*path, i)).items()}
    return {path: value}


def assert_same_leaves(got: dict, want: dict) -> None:
    """The same paths; numbers equal within 1e-5 (the actors run one thread each, which may sum in
    another order than the test process's threads), everything else (ids, words, flags) exactly."""
    assert got.keys() == want.keys()
    for path, expected in want.items():
        value = got[path]
        if isinstance(expected, float) and not isinstance(expected, bool):
            assert value == pytest.approx(expected, rel=1e-5, abs=1e-6, nan_ok=True), path
        else:
            assert value == expected, path


@needs_ray
def test_two_workers_make_the_single_process_rows_and_summary(scenes, single, tmp_path):
    evaluate(scenes, tmp_path, "--workers", "2")
    assert_same_run(single, tmp_path)


@needs_ray
def test_an_actor_killed_mid_run_changes_nothing(scenes, single, tmp_path, monkeypatch):
    killed = []
    record = Evaluation.record

    def record_then_kill(self, handle, rows) -> None:  # the driver writing a sample's rows
        record(self, handle, rows)
        if not killed:  # after the first sample: both actors are busy and four samples wait
            killed.append(kill_an_actor())

    monkeypatch.setattr(Evaluation, "record", record_then_kill)
    result = evaluate(scenes, tmp_path, "--workers", "2")
    assert len(killed) == 1 and "a worker died evaluating sample" in result.stderr
    assert_same_run(single, tmp_path)


@needs_ray
@pytest.mark.parametrize("stop, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_stop_keeps_the_rows_written_and_a_rerun_resumes(scenes, single, tmp_path, stop, code, word):
    """Ctrl-C in a terminal (SIGINT to the whole foreground process group) or `kill PID` (SIGTERM to the
    command's process alone; Ray replaces its handler, which the command takes back)."""
    process = subprocess.Popen([sys.executable, "-m", "mllm_explain", "evaluate",
                                "--data", str(scenes), "--methods", "tam,logit_lens", "--no-faithfulness",
                                "--out", str(tmp_path), "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    rows = tmp_path / "samples.jsonl"
    deadline = time.monotonic() + 300
    while not (rows.exists() and rows.stat().st_size):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    if stop == signal.SIGINT:
        os.killpg(process.pid, stop)
    else:
        process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    lines = stderr.splitlines()
    assert process.returncode == code and len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {word}:") and "rerun the same command to resume" in lines[0]
    assert not (tmp_path / "summary.json").exists() and rows.read_text()
    evaluate(scenes, tmp_path, "--workers", "2")
    assert_same_run(single, tmp_path)


def kill_an_actor() -> int:
    """SIGKILL one of this process's Ray actors, as the kernel's OOM killer would; its process id."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError):
            continue
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor and ancestor != os.getpid():
            ancestor = parents.get(ancestor)
        if ancestor and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_Worker"):
            os.kill(pid, signal.SIGKILL)
            return pid
    raise AssertionError("no actor process found")


def test_workers_without_ray_is_one_line_naming_the_extra(scenes, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    for extra in (["--workers", "2"], ["--address", "ray://head:10001"]):
        with pytest.raises(SystemExit) as exit_:
            main(["evaluate", "--data", str(scenes), "--out", str(tmp_path), *extra])
        lines = capsys.readouterr().err.splitlines()
        assert exit_.value.code == 2 and len(lines) == 1, lines
        assert lines[0].startswith("error:") and "pip install 'mllm-explain[distributed]'" in lines[0]
    assert not any(tmp_path.iterdir())  # refused before any work


@needs_ray
def test_bad_worker_settings_are_one_line_before_any_work(scenes, tmp_path, capsys):
    for extra, fragment in [(["--workers", "2", "--device", "auto"], "--device cuda or --device cpu"),
                            (["--address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1")]:
        with pytest.raises(SystemExit) as exit_:
            main(["evaluate", "--data", str(scenes), "--out", str(tmp_path), *extra])
        lines = capsys.readouterr().err.splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:"), lines
        assert fragment in lines[0]
    assert not any(tmp_path.iterdir())

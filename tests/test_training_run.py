"""`mllm-explain train` where the hardware is: the step plan, data workers, checkpoints, resume after a
kill, continuation from a checkpoint at a chosen stage, and bad options.  Training runs are a few
steps of a tiny model (same code path, small sizes), each in its own process."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from mllm_explain.errors import UserError
from mllm_explain.training import train as training

# A run of `training.train` with the model and tokenizer corpus made tiny; kwargs come as JSON.  With
# "kill_at", the process sends itself "signal" (SIGKILL by default) right after logging the checkpoint
# after that many steps.
TINY_RUN = """
import functools, json, os, signal, sys
from mllm_explain.training import train as T
from mllm_explain.training.build import build_config
T.build_config = functools.partial(build_config, text_hidden=64, text_layers=1, vision_dim=32, vision_layers=1)
T.tokenizer_corpus = functools.partial(T.tokenizer_corpus, n_captions=20)
from mllm_explain import interrupts
kwargs = json.loads(sys.argv[1])
kill_at, stop = kwargs.pop("kill_at", None), kwargs.pop("signal", "SIGKILL")
def log(line):
    print(line, flush=True)
    if kill_at is not None and line.startswith(f"checkpoint after {kill_at} of"):
        os.kill(os.getpid(), getattr(signal, stop))
interrupts.install()  # as the command line does
try:
    T.train(kwargs.pop("out"), log=log, **kwargs)
except KeyboardInterrupt:
    sys.exit(interrupts.exit_code())
"""
# 1 text-only step, then 6 image steps over all four stages at batches 8/4/2/2, scored on one scene at
# image steps 3 and 6; a checkpoint every 4 steps (after image step 3).
TINY = dict(steps=6, text_steps=1, batch_mult=0.125, eval_every=3, eval_scenes=1, checkpoint_every=4)


def tiny_train(**kwargs) -> subprocess.CompletedProcess:
    kwargs = {key: str(value) if key in ("out", "init") else value for key, value in kwargs.items()}
    return subprocess.run([sys.executable, "-c", TINY_RUN, json.dumps(kwargs)], capture_output=True, text=True,
                          timeout=600)


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "whole"
    result = tiny_train(out=out, **TINY)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_the_default_plan_is_the_recipe():
    plan = training.Plan(steps=2700)
    assert plan.total == 3100 and plan.batch(0) == training.TEXT_BATCH and plan.batch(399) == training.TEXT_BATCH
    for done in range(400, plan.total):  # the curriculum as train() computed it inline before the plan
        progress = (done - 400) / 2700
        _, max_objects, areas, sizes, batch_size, shapes = next(s for s in training.STAGES if progress < s[0])
        assert plan.batch(done) == (batch_size, max_objects, areas, sizes, shapes, training.TEXT_SHARE, 0.0)
        assert plan.language_trains(done) == (progress >= 0.2)
    assert all(plan.language_trains(done) for done in range(400))
    assert [training.Plan(100, batch_mult=4).batch(400 + s)[0] for s in (0, 20, 35, 60)] == [256, 128, 64, 64]


def test_a_continuation_spreads_its_steps_over_the_later_stages():
    plan = training.Plan(steps=100, text_steps=0, first_stage=2, continued=True, batch_mult=4)
    stages = [plan.stage(done) for done in range(plan.total)]
    # stage 2 ends at 0.6 of the curriculum, stage 3 at 1.0: (0.6 - 0.35) / 0.65 of the run is stage 2
    assert stages == [2] * 39 + [3] * 61
    assert {plan.batch(done)[:2] for done in range(100)} == {(64, 3), (64, 5)}
    assert all(plan.language_trains(done) for done in range(100))


def test_worker_batches_do_not_depend_on_the_number_of_workers(bundled):
    plan = training.Plan(steps=3, text_steps=1, batch_mult=0.125)
    stream = training.BatchStream(bundled.processor, plan, seed=3, start=1)
    alone = list(stream)  # no worker info: one process makes every step
    pooled = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert [done for done, *_ in alone] == [done for done, *_ in pooled] == [1, 2, 3]
    for (_, a, labels_a), (_, b, labels_b) in zip(alone, pooled):
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(labels_a, labels_b)
        assert torch.equal(a["pixel_values"], b["pixel_values"])
    assert not torch.equal(alone[1][1]["input_ids"][:1], alone[2][1]["input_ids"][:1])  # steps differ


@pytest.mark.parametrize("stop, code", [("SIGKILL", -signal.SIGKILL), ("SIGTERM", 143)])
def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_if_never_killed(uninterrupted, tmp_path, stop, code):
    whole, whole_log = uninterrupted
    assert "trained 7 steps" in whole_log and not (whole / training.CHECKPOINTS).exists()
    out = tmp_path / "killed"
    killed = tiny_train(out=out, kill_at=4, signal=stop, **TINY)  # right after the checkpoint at 4 of 7 steps
    assert killed.returncode == code, killed.stderr
    saved = training.latest_checkpoint(out)
    assert saved is not None and saved.name == "step-0000004"
    assert [entry["step"] for entry in json.loads((out / "training_log.json").read_text())] == [3]
    half_written = out / training.CHECKPOINTS / ".tmp-step-0000006-x"  # as a kill while saving leaves it
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"partial")

    resumed = tiny_train(out=out, **TINY)  # the same command again
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "after 4 of 7 steps" in resumed.stdout
    assert "trained 3 steps" in resumed.stdout
    assert not (out / training.CHECKPOINTS).exists()
    log, whole_history = (json.loads((folder / "training_log.json").read_text()) for folder in (out, whole))
    assert [entry["step"] for entry in log] == [3, 6]  # the log continues
    assert [entry["loss"] for entry in log] == pytest.approx([entry["loss"] for entry in whole_history], rel=1e-5)
    # model, optimiser, schedule and data stream all restored: the same weights as the run never killed
    a, b = weights(out), weights(whole)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    from mllm_explain import load_model

    adapter = load_model(str(out))
    assert adapter.generate(Image.new("RGB", (64, 64)), "Describe this image.", max_new_tokens=2) is not None


def test_continuation_at_a_stage_with_workers_stops_and_resumes(uninterrupted, tmp_path):
    init, _ = uninterrupted
    out = tmp_path / "continued"
    options = dict(out=out, init=init, first_stage=2, steps=3, batch_mult=0.25, lr=3e-4, language_lr=0.1, workers=2,
                   eval_every=3, eval_scenes=1, checkpoint_every=0)
    stopped = tiny_train(max_seconds=0.001, **options)  # stops after its first step, checkpointed
    assert stopped.returncode == 0, stopped.stderr
    assert "data from 2 worker processes" in stopped.stdout
    assert "0 text-only steps, then 3 image steps over curriculum stages 2-3 with image batches 4/4" in stopped.stdout
    assert "stopped after" in stopped.stdout and training.latest_checkpoint(out).name == "step-0000001"
    finished = tiny_train(**options)
    assert finished.returncode == 0, finished.stderr
    assert "resuming from" in finished.stdout and "trained 2 steps" in finished.stdout
    before, after = weights(init), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert [entry["step"] for entry in json.loads((out / "training_log.json").read_text())] == [3]


def _checkpoint_folder(tmp_path, model_type="qwen2_vl"):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


@pytest.mark.parametrize("options, fragment", [
    ({"workers": -1}, "--workers"),
    ({"first_stage": 4}, "--first-stage must be 0-3"),
    ({"first_stage": -1}, "--first-stage"),
    ({"batch_mult": 0}, "--batch-mult"),
    ({"resized_share": 1.5}, "--resized-share must be a fraction"),
    ({"steps": 0}, "--steps"),
    ({"checkpoint_every": -5}, "--checkpoint-every"),
    ({"device": "tpu"}, "unknown device"),
    ({"device": "mps"}, "unsupported device"),
    ({"init": "."}, "not a checkpoint folder"),
    ({"init": "llava"}, "Qwen2-VL checkpoints only"),
    ({"init": "no-weights"}, "no weights"),
])
def test_bad_options_are_user_errors(tmp_path, options, fragment):
    if options.get("init") == "llava":
        options = {"init": _checkpoint_folder(tmp_path, "llava")}
    elif options.get("init") == "no-weights":
        options = {"init": _checkpoint_folder(tmp_path)}
    with pytest.raises(UserError, match=fragment):
        training.train(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="CUDA is not available"):
        training.train(tmp_path / "out", device="cuda")


def test_rerun_with_other_options_does_not_resume(tmp_path):
    saved = tmp_path / "out" / training.CHECKPOINTS / "step-0000010"
    saved.mkdir(parents=True)
    recipe = {"steps": 2700, "lr": 1e-3, "seed": 0, "text_steps": 400, "first_stage": 0, "frozen_language": 0.2,
              "language_lr": 1.0, "batch_mult": 1.0, "init": None}
    (saved / "state.json").write_text(json.dumps({"done": 10, "recipe": recipe}))
    with pytest.raises(UserError, match=r"another run \(--steps 2700 there, 100 here\)"):
        training.train(tmp_path / "out", steps=100)


def test_bad_train_options_are_one_line_errors_on_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", "train",
                             "--out", str(tmp_path / "out"), "--workers", "-1"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["error: --workers must be 0 (data made in-process) or more, got -1"]

"""`mllm-explain evaluate --workers N [--address ...]`: one evaluation run's samples shared out over
Ray actors, in processes on this machine or on the machines of a Ray cluster.

Each actor loads the model once (on one whole GPU where the cluster has GPUs, else on one CPU
thread) and makes the rows of the samples it is sent (`Evaluation.sample_rows`); it touches no file
of the out folder.  The driver -- this process -- alone holds the folder: it resumes as a
single-process run does (only rows not yet in samples.jsonl are asked for), appends each sample's
rows as they come back and writes the same summary.  An actor has one sample at a time, so a faster
actor takes more samples.  An actor that dies (a crash, a lost machine) is replaced and its sample
sent again; the driver writes a sample's rows once, when a live actor returns them.

Ray is imported here only, so the package works without it (the `distributed` extra).  On a cluster,
every machine needs mllm-explain installed, the model, and the dataset at the same path.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from mllm_explain import interrupts
from mllm_explain.adapters import ModelAdapter, load_model, model_source
from mllm_explain.devices import resolve_dtype
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import Sample
from mllm_explain.evaluation.runner import Evaluation, EvaluationConfig
from mllm_explain.outputs import locked_folder

MAX_DEATHS = 3  # actors one sample may see die before the run stops: one that kills every actor is not retried forever


@dataclass(frozen=True)
class RayWorkers:
    """`workers` Ray actors on a local Ray, or on the cluster at `address` (or $RAY_ADDRESS, which
    `ray job submit` sets), each loading `model` (`None`: the bundled one) on `device` (cpu or cuda;
    `None`: a GPU each where the cluster has GPUs) in `dtype`.  Made before any work, so a missing ray,
    an unreachable cluster or a bad device is an error at once."""

    model: str | None
    workers: int
    address: str | None = None
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.device not in (None, "cpu", "cuda"):
            raise UserError(f"--device {self.device} with --workers: each worker runs on one whole GPU or on the CPU; "
                            "use --device cuda or --device cpu")
        resolve_dtype(self.dtype, torch.device("cpu"))  # an unknown --dtype fails before Ray starts
        if self.cluster:
            _send_auth_token()  # before ray is imported: it reads RAY_AUTH_MODE once
        _import_ray()
        if self.cluster:
            _check_reachable(self.cluster)

    @property
    def cluster(self) -> str | None:
        """The address of the Ray cluster to run on; `None`: a local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS")

    def evaluation(self, config: EvaluationConfig, samples: list[Sample]) -> Evaluation:
        """The driver's run: it holds the out folder, the rows and the summary, and loads no model."""
        return Evaluation(_ModelName(model_source(self.model)), config, samples)

    def run(self, evaluation: Evaluation, advance: Callable[[int], None], log: Callable[[str], None]) -> dict:
        """Evaluate the samples of `evaluation` not yet done on the actors, then write and return the
        summary; `advance(k)` counts k more samples complete, `log` says when an actor died."""
        todo = deque(s for s in evaluation.samples if evaluation.missing(s))
        advance(len(evaluation.samples) - len(todo))
        with locked_folder(evaluation.config.out), evaluation.path.open("a") as handle:
            if todo:
                with _ray_session(self.cluster, self.workers) as ray:
                    for rows in self._sample_rows(ray, evaluation, todo, log):
                        evaluation.record(handle, rows)
                        advance(1)
            return evaluation.write_summary()

    def _sample_rows(self, ray: ModuleType, evaluation: Evaluation, todo: deque[Sample],
                     log: Callable[[str], None]) -> Iterator[list[dict]]:
        """The rows of each sample of `todo`, as the actors return them: one sample in flight on each
        actor until `todo` is empty; a sample whose actor died goes to a new actor."""
        start = self._actors(ray, evaluation.config, evaluation.vocabulary)
        in_flight = {}
        deaths: Counter[str] = Counter()

        def send(actor) -> None:
            if todo:
                sample = todo.popleft()
                missing = evaluation.missing(sample)
                in_flight[actor.rows.remote(sample, missing, _prior_rows(evaluation, sample, missing))] = actor, sample

        for _ in range(min(self.workers, len(todo))):
            send(start())
        while in_flight:
            [ready], _ = ray.wait(list(in_flight))
            actor, sample = in_flight.pop(ready)
            try:
                rows = ray.get(ready)
            except ray.exceptions.RayActorError as exc:
                if exc.actor_init_failed:  # not a crash: every new actor would fail the same way
                    raise UserError(f"a worker could not start: {_last_line(exc)} (every machine that runs workers "
                                    "needs mllm-explain installed)") from None
                deaths[sample.sample_id] += 1
                reason = str(exc).splitlines()[0]
                if deaths[sample.sample_id] == MAX_DEATHS:
                    raise UserError(f"{MAX_DEATHS} workers died evaluating sample {sample.sample_id} (the last: "
                                    f"{reason}); the rows written so far are kept in {evaluation.path}: rerun the "
                                    "same command to resume, with fewer --workers if they ran out of memory") from None
                log(f"a worker died evaluating sample {sample.sample_id} ({reason}); it goes to a new worker")
                ray.kill(actor)  # one that is only unreachable may still run
                todo.appendleft(sample)
                actor = start()
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, UserError):
                    raise exc.cause from None
                raise
            else:
                yield rows
            send(actor)

    def _actors(self, ray: ModuleType, config: EvaluationConfig, vocabulary: dict[str, int]) -> Callable[[], object]:
        """A function starting one actor: a GPU each where the cluster has them (unless --device cpu)."""
        gpus = ray.cluster_resources().get("GPU", 0)
        device = "cpu" if self.device == "cpu" or (self.device is None and not gpus) else "cuda"
        if device == "cuda" and gpus < self.workers:
            fewer = f"--workers {int(gpus)} or " if gpus >= 1 else ""
            raise UserError(f"--workers {self.workers} needs a GPU each, the Ray cluster has {gpus:g}; use {fewer}"
                            "--device cpu")
        actor = ray.remote(_Worker).options(num_cpus=1, num_gpus=int(device == "cuda"), max_restarts=0)
        return lambda: actor.remote(self.model, device, self.dtype, config, vocabulary)


@dataclass(frozen=True)
class _ModelName:
    """All the driver's Evaluation reads of its model: the name settings.json and the summary record."""

    name_or_path: str


class _Rows(Evaluation):
    """An Evaluation that only makes rows (`sample_rows`), knowing the sample's rows made before
    (`prior`) and the dataset's categories (`vocabulary`); it holds no lock and touches no file of the
    out folder."""

    def __init__(self, model: ModelAdapter, config: EvaluationConfig, prior: list[dict],
                 vocabulary: dict[str, int]) -> None:
        # not Evaluation's __init__, which locks the out folder and reads and writes its files
        self.model, self.config, self.samples, self.rows, self.vocabulary = model, config, [], prior, vocabulary


class _Worker:
    """A Ray actor: loads the model at its first sample (so that a load error reaches the driver as
    itself, not as a dead actor), then makes the rows of each sample it is sent."""

    def __init__(self, model: str | None, device: str, dtype: str | None, config: EvaluationConfig,
                 vocabulary: dict[str, int]) -> None:
        if device == "cpu":
            torch.set_num_threads(1)  # one CPU per actor
        self.load = {"name_or_path": model, "device": device, "dtype": dtype}
        self.config, self.vocabulary = config, vocabulary
        self.model: ModelAdapter | None = None

    def rows(self, sample: Sample, missing: list[str], prior: list[dict]) -> list[dict]:
        """The rows `missing` of `sample`, whose rows already written are `prior`."""
        if self.model is None:
            self.model = load_model(**self.load, max_vision_tokens=self.config.max_vision_tokens)
        return list(_Rows(self.model, self.config, prior, self.vocabulary).sample_rows(sample, missing))


def _prior_rows(evaluation: Evaluation, sample: Sample, missing: list[str]) -> list[dict]:
    """The rows of `sample` already written when its caption is (a resume that adds a method): the
    caption is then read from its row, not made again."""
    if evaluation.config.baseline in missing:
        return []
    return [row for row in evaluation.rows if row["sample_id"] == sample.sample_id]


@contextmanager
def _ray_session(cluster: str | None, cpus: int) -> Iterator[ModuleType]:
    """Ray connected to the cluster at `cluster`, else a local Ray of `cpus` CPUs, quiet (errors only,
    no worker output, no dashboard); shut down when the block ends, which ends this run's actors."""
    ray = _import_ray()
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if cluster:
            ray.init(address=cluster, **quiet)
        else:
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)  # never a `ray start` one
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {cluster}" if cluster else "a local Ray"
        raise UserError(f"cannot start {where}: {_last_line(exc)}") from None
    interrupts.reclaim()  # Ray's core worker replaces the SIGTERM handler with one that exits at once
    try:
        yield ray
    finally:
        ray.shutdown()


def _last_line(error: Exception) -> str:
    """The last line of a (Ray) error's message, where Ray puts the cause, without colour codes."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _check_reachable(address: str) -> None:
    """Fail at once where nothing answers at a cluster address's host and port (Ray retries for minutes)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():  # "auto": Ray finds the cluster itself
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _send_auth_token() -> None:
    """Send Ray's authentication token where one is at hand and RAY_AUTH_MODE is unset.  A cluster that
    `ray start` made with token authentication (the default of Ray 2.60) asks for it, but a driver sends
    it only when told (RAY_AUTH_MODE=token), else it retries for half a minute and fails; a cluster
    without authentication ignores it."""
    token = any(name in os.environ for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")) or \
        (Path.home() / ".ray" / "auth_token").is_file()
    if token and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError("--workers and --address run on Ray, which is not installed; install the distributed "
                        "extra: pip install 'mllm-explain[distributed]'") from None
    return ray

"""Performance benchmark (`mllm-explain bench`): every claim is a ratio against a baseline measured in
the same process, on the same inputs, so it transfers between machines where seconds do not.

1. rank Gaussian filter: the vectorised filter vs the per-pixel reference loop (outputs checked equal);
2. explaining a whole caption with each method vs plain greedy generation of the same tokens;
3. our TAM vs `naive_tam`, the pipeline the reference implementation follows (maps checked equal);
4. scaling of `tam` / `msea_arc` with answer length, vision tokens and number of scales (log-log fits);
5. the bytes a trace holds, measured (`Trace.nbytes`) against `memory.trace_bytes`, and projected for 7B models.

Times are medians of repeated calls after a warm-up.  Peak memory is the resident-set high-water mark
(Linux VmHWM, reset before each call), reported absolute and as the part the call adds to the resident
set at its start; elsewhere tracemalloc, which sees Python objects only (not tensor storage).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.table import Table

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError
from mllm_explain.memory import PROJECTIONS, TraceSizes, memory_row, trace_bytes
from mllm_explain.methods import get_method, list_methods
from mllm_explain.methods.filters import (
    rank_gaussian_filter,
    rank_gaussian_filter_reference,
)
from mllm_explain.outputs import atomic_path, prepare_folder, write_text
from mllm_explain.pipeline import explain, explain_many
from mllm_explain.video import Video
from mllm_explain.views import FULL_BOX

EXAMPLE_IMAGE = Path(__file__).resolve().parents[2] / "examples" / "scene.png"
VIDEO_FRAME = (224, 224)  # each frame of the video sweep: 8x8 merged patches per group of two frames
VIDEO_ANSWER = "There is a small red circle in the middle of the image."
VIDEO_METHODS = ("logit_lens", "tam")  # no attention rows: what long videos can afford
FILTER_ATOL = 1e-5
MAP_ATOL = 1e-4
THREE_SCALES = (1.0, 0.75, 0.5)  # the goal is for msea_arc with three scales, whatever its default
TIME_GOALS = {"tam": 1.2, "msea_arc, 3 scales": 2.0}  # explain / generate, same caption
FORWARDS_GOAL = 4  # full forwards per sample for seven methods, shared (one by one: 11)
EXPLAIN_GENERATE_GOALS = {"tam": 1.15, "msea_arc": 1.5}  # explain with generation / generate alone
MEMORY_GOAL = 1.5  # explain's peak / generate's
NAIVE_GOAL = 5.0  # naive / ours, time and peak memory
FILTER_GOAL = (48, 100.0)  # grid side, per-map speed-up of the batched filter
SCALE_LADDER = (1.0, 2.0, 1.5, 0.75, 0.5)  # the default pair, then the other scales RESULTS §1 chose among
NAIVE_PROTOCOL = {
    "naive": "generate(output_hidden_states) + LM head over every position of every round + per-token loop "
             "(scores re-gathered from all rounds, closed-form ECI) + per-pixel filter; grid maps",
    "ours": "trace (one teacher-forced forward, final-norm states) + TAM.attribute; grid maps, the same tokens",
    "ours_end_to_end": "forced greedy generate + ours: what it takes when the caption is not known yet",
    "logit_elements": "full-vocabulary logits materialised: naive all positions x rounds, ours T predicting positions",
    "hidden_elements": "hidden-state elements kept: naive every layer of every round, ours final norm of one forward",
}


@dataclass(frozen=True)
class BenchSizes:
    """What one run measures; `QUICK` is sized to finish in under two minutes on two CPU cores."""

    repeats: int
    filter_sides: tuple[int, ...]
    filter_batch: int  # T maps, a caption's tokens
    filter_reference_maps: int  # maps the per-pixel loop filters per grid (the slow side)
    filter_min_time: float  # seconds each vectorised timing loop runs at least
    caption_tokens: int  # answer length of sections 2 and 3
    lengths: tuple[int, ...]
    sides: tuple[int, ...]
    n_scales: int
    scaling_tokens: int  # answer length of the image-size and scale sweeps
    video_frames: tuple[int, ...]  # frames of the video sweep (section 7)


FULL = BenchSizes(repeats=3, filter_sides=(24, 48, 96), filter_batch=32, filter_reference_maps=32,
                  filter_min_time=0.5, caption_tokens=128, lengths=(16, 32, 64, 128, 256),
                  sides=(224, 448, 672, 896), n_scales=5, scaling_tokens=32, video_frames=(8, 16, 32, 64, 128))
QUICK = BenchSizes(repeats=1, filter_sides=(24, 48, 96), filter_batch=32, filter_reference_maps=2,
                   filter_min_time=0.1, caption_tokens=32, lengths=(16, 32, 64), sides=(224, 448), n_scales=3,
                   scaling_tokens=32, video_frames=(4, 8, 16))


# --- measuring ---------------------------------------------------------------------------------------
@dataclass
class Measurement:
    """Median wall time and peak memory of repeated calls, and the last call's result."""

    seconds: float
    peak_bytes: int  # absolute peak during the call
    added_bytes: int  # peak minus the resident set at the call's start
    result: Any = None

    def numbers(self) -> dict[str, float]:
        return {"seconds": self.seconds, "peak_mib": self.peak_bytes / 2**20, "added_mib": self.added_bytes / 2**20}


def memory_measure() -> str:
    """Which peak-memory measure this process can use: "VmHWM" (Linux) or "tracemalloc"."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_bytes("VmHWM")
    except (OSError, KeyError):
        return "tracemalloc"
    return "VmHWM"


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _trim_heap() -> None:
    """Collect garbage and hand freed heap pages back (glibc), so a call's peak is its own, not a
    previous call's leftovers already resident."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def _peak(kind: str) -> Iterator[list[int]]:
    """Yields a list that receives [peak, start] in bytes once the block ends."""
    _trim_heap()
    box: list[int] = []
    if kind == "VmHWM":
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current VmRSS
        start = _status_bytes("VmRSS")
        yield box
        box += [_status_bytes("VmHWM"), start]
    else:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        yield box
        box += [tracemalloc.get_traced_memory()[1], start]


def measure(fn: Callable[[], Any], repeats: int, kind: str, warmup: bool = True) -> Measurement:
    """Median time and peak memory of `repeats` calls of `fn`, after one unmeasured warm-up call."""
    if warmup:
        fn()
    times, peaks, added = [], [], []
    result = None
    for _ in range(repeats):
        with _peak(kind) as memory:
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        peaks.append(memory[0])
        added.append(memory[0] - memory[1])
    return Measurement(statistics.median(times), int(statistics.median(peaks)), int(statistics.median(added)), result)


def _per_call_seconds(fn: Callable[[], Any], min_time: float) -> float:
    """Median seconds per call of a fast `fn`: calls batched until a batch takes min_time / 5, five batches."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= min_time / 5 or loops >= 2**20:
            break
        loops *= 2
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        batches.append((time.perf_counter() - start) / loops)
    return statistics.median(batches)


def fit_exponent(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x: y ~ x^k gives k (1.0 = linear)."""
    return float(np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)[0])


# --- 1. the rank Gaussian filter -----------------------------------------------------------------------
def filter_case(side: int, batch: int, n_reference: int, seed: int = 0, min_time: float = 0.1) -> dict[str, float]:
    """Our filter vs the per-pixel reference on `batch` random side x side maps: equal within 1e-5
    (AssertionError otherwise), and the per-map speed-up one map at a time and batched."""
    rng = np.random.default_rng(seed)
    maps = torch.from_numpy(rng.random((batch, side, side), dtype=np.float32) ** 2)  # in [0, 1], skewed like maps
    n_reference = min(n_reference, batch)
    start = time.perf_counter()
    reference = np.stack([rank_gaussian_filter_reference(grid) for grid in maps[:n_reference].numpy()])
    reference_s = (time.perf_counter() - start) / n_reference
    difference = max(float(np.abs(rank_gaussian_filter(maps)[:n_reference].numpy() - reference).max()),
                     float(np.abs(rank_gaussian_filter(maps[0]).numpy() - reference[0]).max()))
    if difference > FILTER_ATOL:
        raise AssertionError(f"rank Gaussian filter differs from the reference by {difference:.2e} on {side}x{side}")
    single_s = _per_call_seconds(lambda: rank_gaussian_filter(maps[0]), min_time)
    batched_s = _per_call_seconds(lambda: rank_gaussian_filter(maps), min_time) / batch
    return {"side": side, "maps": batch, "reference_maps": n_reference, "max_abs_diff": difference,
            "reference_s_per_map": reference_s, "ours_single_s": single_s, "ours_batched_s_per_map": batched_s,
            "ratio_single": reference_s / single_s, "ratio_batched": reference_s / batched_s}


@contextmanager
def counting_forwards(adapter: ModelAdapter) -> Iterator[list[int]]:
    """Count the model's full forwards while active (`[n]`): calls that feed more than one new token, i.e.
    prefills and teacher-forced or gradient passes, not generation's one-token decode steps."""
    count = [0]

    def count_call(_module, args, kwargs):
        tokens = kwargs.get("input_ids", args[0] if args else None)
        if tokens is None:
            tokens = kwargs["inputs_embeds"]
        count[0] += tokens.shape[1] > 1

    handle = adapter.model.register_forward_pre_hook(count_call, with_kwargs=True)
    try:
        yield count
    finally:
        handle.remove()


# --- 2. explaining a caption vs generating it -----------------------------------------------------------
def forced_generate(adapter: ModelAdapter, image: Image.Image, prompt: str, n_tokens: int) -> list[int]:
    """Greedy answer of exactly `n_tokens` (end-of-answer suppressed until then), so that generation and
    explanation cover the same tokens."""
    inputs = adapter.encode(adapter.scaled_image(image, 1.0)[0], prompt)
    with torch.inference_mode():
        out = adapter.model.generate(**inputs, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def answer_text(adapter: ModelAdapter, ids: Sequence[int]) -> tuple[str, int]:
    """The text of `ids` and how many tokens `explain` will see when it re-tokenises that text."""
    text = adapter.tokenizer.decode(list(ids))
    return text, len(adapter.tokenize_answer(text))


# --- 3. the naive pipeline of the reference implementation ------------------------------------------------
@dataclass
class NaiveTAM:
    answer_ids: list[int]
    maps: np.ndarray  # (T, gh, gw) float64: ECI, joint normalisation, per-pixel filter
    logit_elements: int  # full-vocabulary logits it materialised, all rounds together
    hidden_elements: int  # hidden states generate kept (every layer, every round)
    sequence_length: int


def naive_tam(adapter: ModelAdapter, image: Image.Image, prompt: str, n_tokens: int) -> NaiveTAM:
    """TAM maps the way the reference implementation computes them, as the baseline of section 3.

    Generation with every layer's hidden states; the LM head over every position of every round
    (full-vocabulary logits); per answer token, its scores re-gathered from all rounds so far, ECI
    with one least-squares scalar per token in a Python loop (the reference calls a scalar optimiser
    there, slower still), joint normalisation and the per-pixel filter loop.  Definitions are
    DESIGN §3's, the same as ours (an earlier answer token's relevance read in the round that
    produced it), so the maps must agree; the reference's slot quirks (`reference_quirks`) and
    first-token map are not reproduced, and the filtered maps of prompt tokens it also
    makes in round 0 are skipped, which makes this baseline faster, never slower, than the reference.
    """
    inputs = adapter.encode(adapter.scaled_image(image, 1.0)[0], prompt)
    with torch.inference_mode():
        out = adapter.model.generate(**inputs, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=False,
                                     output_hidden_states=True, return_dict_in_generate=True)
        head = adapter.model.get_output_embeddings()
        logits = [head(states[-1])[0].float().cpu() for states in out.hidden_states]  # round r: (positions, V)
    tokens = out.sequences[0].tolist()
    start = inputs["input_ids"].shape[1]
    grid = adapter.vision_grid(inputs)
    vision = [i for i, token in enumerate(tokens[:start]) if token == adapter.image_token_id]
    prompt_positions = adapter._prompt_positions(tokens, prompt, max(vision) + 1, start).tolist()
    raw = {j: logits[0][vision, tokens[j]].clamp(min=0).numpy() for j in prompt_positions}  # class = own id
    context = prompt_positions + list(range(start, len(tokens)))
    slot = {j: j if j < start else j - 1 for j in context}  # where each context token's relevance is read
    maps = []
    for position in range(start, len(tokens)):
        cls = tokens[position]
        scores = torch.cat([logits[r][:, cls] for r in range(position - start + 1)]).clamp(min=0).numpy()
        raw[position] = scores[vision]
        before = [j for j in context if j < position]
        image_map = raw[position]
        others = [j for j in before if tokens[j] != cls]
        if others:
            relevance = scores[[slot[j] for j in others]]
            weights = relevance / (relevance.sum() + 1e-8)
            interference = (np.stack([raw[j] for j in others]) * weights[:, None]).sum(0)
            energy = float(interference @ interference)
            alpha = float(image_map @ interference) / energy if energy > 0 else 0.0
            image_map = np.maximum(image_map - alpha * interference, 0)
        text = scores[[slot[j] for j in before]]  # the own score (at position - 1) is no slot of these
        joint = np.concatenate([image_map, text])
        low, high = joint.min(), joint.max()
        normalised = (image_map - low) / max(high - low, 1e-12)
        maps.append(rank_gaussian_filter_reference(normalised.reshape(grid)))
    return NaiveTAM(
        answer_ids=tokens[start:], maps=np.stack(maps), logit_elements=sum(x.numel() for x in logits),
        hidden_elements=sum(h.numel() for states in out.hidden_states for h in states), sequence_length=len(tokens),
    )


def tam_maps(adapter: ModelAdapter, image: Image.Image, prompt: str, answer_ids: Sequence[int]) -> torch.Tensor:
    """Our TAM grid maps (T, gh, gw) for given answer ids: one teacher-forced trace and the vectorised
    pipeline -- what `explain` runs before it upsamples every map to the image."""
    return get_method("tam").attribute(adapter, [adapter.trace(image, prompt, list(answer_ids))]).maps


# --- 6. one forward for every method ----------------------------------------------------------------------
def sharing_case(adapter: ModelAdapter, image: Image.Image, prompt: str, max_new_tokens: int, repeats: int,
                 kind: str) -> dict:
    """A sample's generation and all seven methods' explanations of it (what `evaluate --no-faithfulness`
    computes per sample), one by one (each method its own teacher-forced forwards) against shared
    (`explain_many`: one forward per distinct input, the generation's states as the scale-1 trace): full
    forwards counted and time; then `explain` with generation against `generate` alone for tam and msea_arc."""
    methods = list_methods()

    def one_by_one() -> None:
        ids = adapter.generate(image, prompt, max_new_tokens=max_new_tokens)
        text = adapter.tokenizer.decode(ids, skip_special_tokens=True)
        for method in methods:
            explain(adapter, image, prompt, answer=text, method=method, grounding=False)

    def shared() -> None:
        explain_many(adapter, image, prompt, methods=methods, max_new_tokens=max_new_tokens, grounding=False)

    forwards = {}
    for name, fn in (("one_by_one", one_by_one), ("shared", shared)):
        with counting_forwards(adapter) as count:
            fn()
        forwards[name] = count[0]
    # the counting runs above were the warm-up of every call below
    separate, together = measure(one_by_one, repeats, kind, False), measure(shared, repeats, kind, False)
    generate = measure(lambda: adapter.generate(image, prompt, max_new_tokens=max_new_tokens), repeats, kind, False)
    explained = {method: measure(partial(explain, adapter, image, prompt, method=method, grounding=False,
                                         max_new_tokens=max_new_tokens), repeats, kind, False)
                 for method in EXPLAIN_GENERATE_GOALS}
    return {"methods": methods, "answer_tokens": len(generate.result), "forwards": forwards,
            "one_by_one": separate.numbers(), "shared": together.numbers(),
            "speed_up": separate.seconds / together.seconds, "generate": generate.numbers(),
            "explain_with_generation": {method: {**run.numbers(), "time_ratio": run.seconds / generate.seconds}
                                        for method, run in explained.items()}}


# --- the run ------------------------------------------------------------------------------------------------
def run_bench(out: Path, quick: bool = False, progress: Callable[[str], None] | None = None,
              placement: dict | None = None) -> dict:
    """Run all four sections with the bundled model (loaded with `placement`: `load_model`'s device,
    dtype, device_map) on the example image, write `out/bench.json` and `out/bench.png`, and return the
    report (`tables(report)` renders it)."""
    prepare_folder(out)  # a file, or a folder that cannot be written, is refused before the work
    if not EXAMPLE_IMAGE.is_file():
        raise UserError(f"the benchmark image {EXAMPLE_IMAGE} is missing; run from a source checkout")
    from mllm_explain.adapters import load_model
    from mllm_explain.data.synth import DEFAULT_PROMPT
    from mllm_explain.images import load_image

    step = progress or (lambda _label: None)
    sizes = QUICK if quick else FULL
    kind = memory_measure()
    step("loading model")
    adapter = load_model(**(placement or {}))
    image = load_image(EXAMPLE_IMAGE)
    bench = Bench(adapter, image, DEFAULT_PROMPT, sizes, kind, step)
    report = {
        "quick": quick, "sizes": asdict(sizes), "machine": _machine(), "model": adapter.name_or_path,
        "device": str(adapter.device), "dtype": str(adapter.model.dtype).removeprefix("torch."),
        "image": EXAMPLE_IMAGE.name, "prompt": DEFAULT_PROMPT, "memory_measure": _memory_note(kind),
        "filter": bench.filters(), "caption": bench.caption(), "naive": bench.naive(), "scaling": bench.scaling(),
        "memory": bench.memory(), "sharing": bench.sharing(), "video": bench.video(),
    }
    report["goals"] = goals(report)
    write_text(out / "bench.json", json.dumps(report, indent=1))
    step("plotting")
    plot(report, out / "bench.png")
    return report


class Bench:
    """The four sections on one model, image and prompt."""

    def __init__(self, adapter: ModelAdapter, image: Image.Image, prompt: str, sizes: BenchSizes, kind: str,
                 step: Callable[[str], None]) -> None:
        self.adapter, self.image, self.prompt = adapter, image, prompt
        self.sizes, self.kind, self.step = sizes, kind, step

    def _measure(self, fn: Callable[[], Any], warmup: bool = True) -> Measurement:
        return measure(fn, self.sizes.repeats, self.kind, warmup)

    def filters(self) -> list[dict]:
        """Section 1: filter speed-ups per grid size, one map and a caption's batch of maps."""
        rows = []
        for side in self.sizes.filter_sides:
            self.step(f"filter {side}x{side}")
            rows.append(filter_case(side, self.sizes.filter_batch, self.sizes.filter_reference_maps,
                                    min_time=self.sizes.filter_min_time))
        return rows

    def caption(self) -> dict:
        """Section 2: each method's `explain` of an N-token caption against generating those N tokens."""
        n = self.sizes.caption_tokens
        self.step(f"generate {n} tokens")
        generate = self._measure(lambda: forced_generate(self.adapter, self.image, self.prompt, n))
        text, explained = answer_text(self.adapter, generate.result)
        rows = []
        cases = [(name, name, {}) for name in list_methods()]
        cases.append(("msea_arc, 3 scales", "msea_arc", {"scales": THREE_SCALES}))
        for label, name, options in cases:
            self.step(f"explain {n} tokens with {label}")
            run = self._measure(partial(explain, self.adapter, self.image, self.prompt, answer=text, method=name,
                                        **options))
            rows.append({"method": label, "options": get_method(name, **options).options(), **run.numbers(),
                         "time_ratio": run.seconds / generate.seconds,
                         "peak_ratio": run.peak_bytes / generate.peak_bytes,
                         "added_ratio": run.added_bytes / max(generate.added_bytes, 1)})
        return {"tokens": n, "tokens_explained": explained, "answer": text, "generate": generate.numbers(),
                "methods": rows}

    def naive(self) -> dict:
        """Section 3: `naive_tam` against our TAM on the same caption (maps checked), plus structural counts."""
        n = self.sizes.caption_tokens
        self.step(f"naive TAM pipeline, {n} tokens")
        naive = self._measure(lambda: naive_tam(self.adapter, self.image, self.prompt, n))
        result: NaiveTAM = naive.result
        self.step(f"our TAM, {n} tokens")
        ours = self._measure(lambda: tam_maps(self.adapter, self.image, self.prompt, result.answer_ids))
        difference = float(np.abs(ours.result.double().numpy() - result.maps).max())
        if difference > MAP_ATOL:
            raise AssertionError(f"our TAM maps differ from the naive pipeline's by {difference:.2e}")
        self.step(f"generate + our TAM, {n} tokens")
        end_to_end = self._measure(lambda: tam_maps(self.adapter, self.image, self.prompt,
                                                    forced_generate(self.adapter, self.image, self.prompt, n)))
        vocabulary, width = self.adapter.unembedding.shape
        ours_logits = n * vocabulary  # base_scores: full logits at the T predicting text positions only
        ours_hidden = result.sequence_length * width  # trace: final-norm states only
        return {
            "protocol": NAIVE_PROTOCOL, "tokens": n, "max_abs_diff": difference,
            "naive": naive.numbers(), "ours": ours.numbers(), "ours_end_to_end": end_to_end.numbers(),
            "time_ratio": naive.seconds / ours.seconds, "time_ratio_end_to_end": naive.seconds / end_to_end.seconds,
            "peak_ratio": naive.peak_bytes / ours.peak_bytes,
            "added_ratio": naive.added_bytes / max(ours.added_bytes, 1),
            "peak_ratio_end_to_end": naive.peak_bytes / end_to_end.peak_bytes,
            "added_ratio_end_to_end": naive.added_bytes / max(end_to_end.added_bytes, 1),
            "logit_elements": {"naive": result.logit_elements, "ours": ours_logits,
                               "ratio": result.logit_elements / ours_logits},
            "hidden_elements": {"naive": result.hidden_elements, "ours": ours_hidden,
                                "ratio": result.hidden_elements / ours_hidden},
            "vocabulary": vocabulary,
        }

    def scaling(self) -> dict:
        """Section 4: `explain` time against answer length, vision tokens and number of scales."""
        sizes = self.sizes
        ids = forced_generate(self.adapter, self.image, self.prompt, max(sizes.lengths))
        length = {}
        for name in ("tam", "msea_arc"):
            points = []
            for n in sizes.lengths:
                self.step(f"scaling: {name}, {n} tokens")
                text, explained = answer_text(self.adapter, ids[:n])
                run = self._measure(partial(explain, self.adapter, self.image, self.prompt, answer=text, method=name,
                                            grounding=False), warmup=not points)
                points.append({"tokens": explained, "seconds": run.seconds})
            length[name] = _fit(points, "tokens")
        text, _ = answer_text(self.adapter, ids[:sizes.scaling_tokens])
        image_size = {}
        with _pixel_cap(self.adapter, max(sizes.sides) ** 2):
            for name in ("tam", "msea_arc"):
                points = []
                for side in sizes.sides:
                    self.step(f"scaling: {name}, {side} px")
                    picture = self.image.resize((side, side), Image.BICUBIC)
                    views = self.adapter.vision_views(self.adapter.encode(picture, self.prompt), picture, FULL_BOX)
                    # no grounding: its detail view runs only where the image can be enlarged 1.5x, which
                    # would add a forward of 4x the vision tokens to the smaller sides alone
                    run = self._measure(partial(explain, self.adapter, picture, self.prompt, answer=text, method=name,
                                                grounding=False), warmup=not points)
                    points.append({"side": side, "grids": [list(view.grid) for view in views],
                                   "vision_tokens": sum(len(view.positions) for view in views),
                                   "seconds": run.seconds})
                image_size[name] = _fit(points, "vision_tokens")
        points = []
        for k in range(1, sizes.n_scales + 1):
            scales = SCALE_LADDER[:k]
            self.step(f"scaling: msea_arc, {k} scales")
            run = self._measure(partial(explain, self.adapter, self.image, self.prompt, answer=text, method="msea_arc",
                                        scales=scales, grounding=False), warmup=not points)
            points.append({"n_scales": k, "scales": list(scales), "seconds": run.seconds})
        return {"length": length, "image_size": image_size, "scales": {"msea_arc": _fit(points, "n_scales")},
                "tokens_for_image_and_scales": sizes.scaling_tokens}


    def video(self, methods: Sequence[str] = VIDEO_METHODS) -> dict:
        """Section 7: `explain` of a video against its frame count (frames of the example image, each shifted): time,
        peak and added memory, vision tokens; power-law exponents and the added bytes per frame."""
        width, height = VIDEO_FRAME
        base = self.image.convert("RGB").resize((width, height), Image.BICUBIC)
        text = VIDEO_ANSWER
        found = {}
        for name in methods:
            points = []
            for n in self.sizes.video_frames:
                self.step(f"video: {name}, {n} frames")
                frames = [Image.fromarray(np.roll(np.asarray(base), 4 * k, axis=1)) for k in range(n)]
                clip = Video.from_frames(frames, fps=2.0)
                run = self._measure(partial(explain, self.adapter, prompt=self.prompt, answer=text, method=name,
                                            video=clip, grounding=False, notice=lambda _line: None),
                                    warmup=not points)
                tokens = sum(view["grid"][0] * view["grid"][1] for view in run.result.views)
                points.append({"frames": n, "vision_tokens": tokens, **run.numbers()})
            fit = _fit(points, "frames")
            added = [p["added_mib"] * 2**20 for p in points]
            fit["added_exponent"] = fit_exponent([p["frames"] for p in points], [max(a, 1.0) for a in added])
            fit["added_bytes_per_frame"] = float(np.polyfit([p["frames"] for p in points], added, 1)[0])
            found[name] = fit
        return {"frame_size": [width, height], "answer": text, "methods": found}

    def sharing(self) -> dict:
        """Section 6: seven methods on one forward each per distinct input, and explain with generation."""
        self.step("sharing: seven methods, one by one and shared")
        return sharing_case(self.adapter, self.image, self.prompt, self.sizes.caption_tokens, self.sizes.repeats,
                            self.kind)

    def memory(self) -> dict:
        """Section 5: the trace of an N-token caption, its bytes measured and predicted, and the projections."""
        n = self.sizes.caption_tokens
        self.step(f"trace bytes, {n} tokens")
        return trace_memory(self.adapter, self.image, self.prompt,
                            forced_generate(self.adapter, self.image, self.prompt, n))


def trace_memory(adapter: ModelAdapter, image: Image.Image, prompt: str, answer_ids: Sequence[int]) -> dict:
    """`Trace.nbytes` of one trace, with and without attention rows, against `memory.trace_bytes` for
    the trace's sizes (AssertionError when they differ), and the same prediction for 7B models."""
    vocabulary, width = adapter.unembedding.shape
    measured = {}
    for attention in (False, True):
        trace = adapter.trace(image, prompt, list(answer_ids), attention=attention)
        n, p, t = len(trace.vision_positions), len(trace.prompt_positions), len(trace.answer_positions)
        sizes = TraceSizes(vision=n, answer=t, hidden=width, vocabulary=vocabulary, prompt=p,
                           template=len(trace.input_ids) - n - p - t)
        if trace.nbytes != trace_bytes(sizes, attention):
            raise AssertionError(f"a trace holds {trace.nbytes} bytes, memory.trace_bytes predicts "
                                 f"{trace_bytes(sizes, attention)}")
        measured["with_attention" if attention else "plain"] = trace.nbytes
    return {"measured": memory_row("bundled model (measured)", sizes) | {"nbytes": measured},
            "projections": [memory_row(name, sizes) for name, sizes in PROJECTIONS.items()]}


def _fit(points: list[dict], x: str) -> dict:
    exponent = fit_exponent([p[x] for p in points], [p["seconds"] for p in points]) if len(points) > 1 else None
    return {"x": x, "points": points, "exponent": exponent}


@contextmanager
def _pixel_cap(adapter: ModelAdapter, pixels: int) -> Iterator[None]:
    """Let the processor take inputs up to `pixels` (the bundled model caps them at 448 x 448), so
    larger sides give more vision tokens instead of the same downscaled input."""
    size = getattr(getattr(adapter.processor, "image_processor", None), "size", None)
    if size is None or "longest_edge" not in size or size["longest_edge"] >= pixels:
        yield
        return
    previous = size["longest_edge"]
    size["longest_edge"] = pixels
    try:
        yield
    finally:
        size["longest_edge"] = previous


def _machine() -> dict:
    import transformers

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def _memory_note(kind: str) -> str:
    if kind == "VmHWM":
        return ("VmHWM: Linux resident-set high-water mark, reset via /proc/self/clear_refs before each call; "
                "peak = the mark, added = the mark minus VmRSS at the call's start (heap trimmed first)")
    return "tracemalloc: Python allocations only (tensor storage is not seen); treat memory ratios as unmeasured"


# --- reporting ------------------------------------------------------------------------------------------------
def goals(report: dict) -> list[dict]:
    """Every goal of the issue with its measured value and whether it is met."""
    rows = []

    def add(section: str, what: str, value: float, op: str, limit: float, unit: str = "x") -> None:
        met = value <= limit if op == "<=" else value >= limit
        rows.append({"section": section, "what": what, "value": value, "goal": f"{op} {limit:g}{unit}",
                     "met": bool(met)})

    side, limit = FILTER_GOAL
    for row in report["filter"]:
        if row["side"] == side:
            add("filter", f"speed-up per map, batched, {side}x{side}", row["ratio_batched"], ">=", limit)
    for row in report["caption"]["methods"]:
        if row["method"] in TIME_GOALS:
            add("caption", f"{row['method']} time / generate", row["time_ratio"], "<=", TIME_GOALS[row["method"]])
            add("caption", f"{row['method']} peak memory / generate", row["peak_ratio"], "<=", MEMORY_GOAL)
    naive = report["naive"]
    add("naive", "naive / ours time (caption given)", naive["time_ratio"], ">=", NAIVE_GOAL)
    add("naive", "naive / ours time (generate + TAM)", naive["time_ratio_end_to_end"], ">=", NAIVE_GOAL)
    add("naive", "naive / ours peak memory", naive["peak_ratio"], ">=", NAIVE_GOAL)
    add("naive", "naive / ours added memory", naive["added_ratio"], ">=", NAIVE_GOAL)
    sharing = report["sharing"]
    add("sharing", "full forwards per sample, seven methods", sharing["forwards"]["shared"], "<=", FORWARDS_GOAL, "")
    for method, goal in EXPLAIN_GENERATE_GOALS.items():
        add("sharing", f"explain {method} with generation / generate",
            sharing["explain_with_generation"][method]["time_ratio"], "<=", goal)
    return rows


def _mark(report: dict, section: str, what: str) -> str:
    for row in report["goals"]:
        if row["section"] == section and row["what"] == what:
            return f"{row['goal']} " + ("[green]met[/]" if row["met"] else "[red]missed[/]")
    return ""


def _ratio(value: float) -> str:
    return f"{value:,.1f}x" if value >= 10 else f"{value:.2f}x"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def tables(report: dict) -> list[Table]:
    """One rich table per section: ratios first, absolute numbers beside them, goals marked."""
    side, _ = FILTER_GOAL
    first = Table(title="1. Rank Gaussian filter: per-pixel reference / ours, per map")
    for column in ("grid", "ratio, one map", "ratio, batched (T maps)", "goal", "reference / map", "ours, one map",
                   "ours / map, batched", "max |diff|"):
        first.add_column(column, justify="right")
    for row in report["filter"]:
        goal = _mark(report, "filter", f"speed-up per map, batched, {side}x{side}") if row["side"] == side else ""
        first.add_row(f"{row['side']}x{row['side']}", _ratio(row["ratio_single"]), _ratio(row["ratio_batched"]), goal,
                      _ms(row["reference_s_per_map"]), _ms(row["ours_single_s"]), _ms(row["ours_batched_s_per_map"]),
                      f"{row['max_abs_diff']:.1e}")

    caption, generate = report["caption"], report["caption"]["generate"]
    second = Table(title=f"2. Explaining a {caption['tokens']}-token caption / generating it "
                         f"(generate: {_ms(generate['seconds'])}, peak {generate['peak_mib']:.0f} MiB, "
                         f"added {generate['added_mib']:.1f} MiB)")
    for column in ("method", "time ratio", "time goal", "peak-memory ratio", "memory goal", "added-memory ratio",
                   "time", "peak MiB", "added MiB"):
        second.add_column(column, justify="right")
    for row in caption["methods"]:
        name = row["method"]
        second.add_row(name, _ratio(row["time_ratio"]), _mark(report, "caption", f"{name} time / generate"),
                       _ratio(row["peak_ratio"]), _mark(report, "caption", f"{name} peak memory / generate"),
                       _ratio(row["added_ratio"]), _ms(row["seconds"]), f"{row['peak_mib']:.0f}",
                       f"{row['added_mib']:.1f}")

    naive = report["naive"]
    third = Table(title=f"3. Naive TAM pipeline / ours, {naive['tokens']} tokens (maps agree to "
                        f"{naive['max_abs_diff']:.0e})")
    for column in ("measure", "ratio naive / ours", "goal", "naive", "ours"):
        third.add_column(column, justify="right")
    third.add_row("time, caption given", _ratio(naive["time_ratio"]),
                  _mark(report, "naive", "naive / ours time (caption given)"),
                  _ms(naive["naive"]["seconds"]), _ms(naive["ours"]["seconds"]))
    third.add_row("time, generate + TAM", _ratio(naive["time_ratio_end_to_end"]),
                  _mark(report, "naive", "naive / ours time (generate + TAM)"),
                  _ms(naive["naive"]["seconds"]), _ms(naive["ours_end_to_end"]["seconds"]))
    third.add_row("peak memory", _ratio(naive["peak_ratio"]), _mark(report, "naive", "naive / ours peak memory"),
                  f"{naive['naive']['peak_mib']:.0f} MiB", f"{naive['ours']['peak_mib']:.0f} MiB")
    third.add_row("added memory", _ratio(naive["added_ratio"]), _mark(report, "naive", "naive / ours added memory"),
                  f"{naive['naive']['added_mib']:.1f} MiB", f"{naive['ours']['added_mib']:.1f} MiB")
    for key, label in (("logit_elements", "full-vocabulary logits"), ("hidden_elements", "hidden-state elements")):
        third.add_row(label, _ratio(naive[key]["ratio"]), "", f"{naive[key]['naive']:,}", f"{naive[key]['ours']:,}")

    scaling = report["scaling"]
    fourth = Table(title="4. Scaling: time ~ x^k, k fitted on log-log (1.0 = linear)")
    for column in ("method", "x", "k", "points (x: time)"):
        fourth.add_column(column, justify="right" if column == "k" else "left")
    for axis in ("length", "image_size", "scales"):
        for name, fit in scaling[axis].items():
            points = ", ".join(f"{p[fit['x']]}: {_ms(p['seconds'])}" for p in fit["points"])
            exponent = "" if fit["exponent"] is None else f"{fit['exponent']:.2f}"
            fourth.add_row(name, fit["x"].replace("_", " "), exponent, points)
    memory = report["memory"]
    fifth = Table(title="5. Trace bytes (Trace.nbytes = memory.trace_bytes, checked) and the methods' float32 "
                        "working set")
    for column in ("model", "vision N", "answer T", "hidden d", "vocabulary V", "trace", "per answer token",
                   "with attention", "method work"):
        fifth.add_column(column, justify="left" if column == "model" else "right")
    for row in [memory["measured"], *memory["projections"]]:
        fifth.add_row(row["name"], str(row["vision"]), str(row["answer"]), str(row["hidden"]),
                      f"{row['vocabulary']:,}", _mib(row["trace_bytes"]),
                      f"{row['trace_bytes_per_answer_token'] / 1024:,.1f} KiB",
                      _mib(row["trace_bytes_with_attention"]), _mib(row["method_work_bytes"]))
    sharing = report["sharing"]
    sixth = Table(title=f"6. Seven methods of one {sharing['answer_tokens']}-token caption: one by one / shared "
                        f"forwards (speed-up {_ratio(sharing['speed_up'])})")
    for column in ("measure", "value", "goal", "one by one", "shared"):
        sixth.add_column(column, justify="right")
    sixth.add_row("full forwards per sample", f"{sharing['forwards']['shared']}",
                  _mark(report, "sharing", "full forwards per sample, seven methods"),
                  str(sharing["forwards"]["one_by_one"]), str(sharing["forwards"]["shared"]))
    sixth.add_row("time per sample", _ratio(sharing["speed_up"]), "", _ms(sharing["one_by_one"]["seconds"]),
                  _ms(sharing["shared"]["seconds"]))
    for method, run in sharing["explain_with_generation"].items():
        sixth.add_row(f"explain {method} with generation / generate", _ratio(run["time_ratio"]),
                      _mark(report, "sharing", f"explain {method} with generation / generate"),
                      _ms(sharing["generate"]["seconds"]), _ms(run["seconds"]))
    video = report["video"]
    seventh = Table(title=f"7. Explaining a video ({video['frame_size'][0]}x{video['frame_size'][1]} px frames) "
                          f"against its frame count")
    for column in ("method", "frames", "vision tokens", "time", "peak MiB", "added MiB", "time exponent",
                   "added-memory exponent", "added / frame"):
        seventh.add_column(column, justify="right")
    for name, fit in video["methods"].items():
        for i, point in enumerate(fit["points"]):
            seventh.add_row(name if i == 0 else "", str(point["frames"]), f"{point['vision_tokens']:,}",
                            _ms(point["seconds"]), f"{point['peak_mib']:,.0f}", f"{point['added_mib']:,.1f}",
                            f"{fit['exponent']:.2f}" if i == 0 else "",
                            f"{fit['added_exponent']:.2f}" if i == 0 else "",
                            _mib(fit["added_bytes_per_frame"]) if i == 0 else "")
    return [first, second, third, fourth, fifth, sixth, seventh]


def _mib(value: float) -> str:
    return f"{value / 2**20:,.2f} MiB"


def plot(report: dict, path: Path) -> None:
    """Six panels: the ratios of sections 1-3 with their goals, and the three scaling sweeps (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    rows = report["filter"]
    labels = [f"{r['side']}x{r['side']}" for r in rows]
    x = np.arange(len(rows))
    ax = axes[0, 0]
    ax.bar(x - 0.2, [r["ratio_single"] for r in rows], 0.4, label="one map")
    ax.bar(x + 0.2, [r["ratio_batched"] for r in rows], 0.4, label=f"batched ({rows[0]['maps']} maps)")
    ax.axhline(FILTER_GOAL[1], color="k", ls="--", lw=1, label=f"goal at {FILTER_GOAL[0]}x{FILTER_GOAL[0]}")
    ax.set(xticks=x, xticklabels=labels, yscale="log", ylabel="reference / ours, per map",
           title="1. rank Gaussian filter")
    ax.legend(fontsize=8)

    methods = report["caption"]["methods"]
    x = np.arange(len(methods))
    ax = axes[0, 1]
    ax.bar(x - 0.2, [m["time_ratio"] for m in methods], 0.4, label="time")
    ax.bar(x + 0.2, [m["peak_ratio"] for m in methods], 0.4, label="peak memory")
    for i, m in enumerate(methods):
        if m["method"] in TIME_GOALS:
            ax.plot([i - 0.4, i], [TIME_GOALS[m["method"]]] * 2, color="k", lw=2)
    ax.axhline(MEMORY_GOAL, color="tab:orange", ls="--", lw=1, label="memory goal")
    ax.axhline(1, color="grey", lw=0.5)
    ax.set(xticks=x, ylabel="explain / generate", title=f"2. explain a {report['caption']['tokens']}-token caption "
                                                         "(black: time goals)")
    ax.set_xticklabels([m["method"] for m in methods], rotation=30, ha="right")
    ax.legend(fontsize=8)

    naive = report["naive"]
    bars = {"time": naive["time_ratio"], "time incl.\ngenerate": naive["time_ratio_end_to_end"],
            "peak\nmemory": naive["peak_ratio"], "added\nmemory": naive["added_ratio"],
            "logits": naive["logit_elements"]["ratio"], "hidden\nstates": naive["hidden_elements"]["ratio"]}
    ax = axes[0, 2]
    ax.bar(list(bars), list(bars.values()), color=["tab:blue"] * 2 + ["tab:orange"] * 2 + ["tab:grey"] * 2)
    ax.axhline(NAIVE_GOAL, color="k", ls="--", lw=1, label="goal")
    ax.axhline(1, color="grey", lw=0.5)
    ax.set(yscale="log", ylabel="naive / ours", title=f"3. naive TAM pipeline vs ours, {naive['tokens']} tokens")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)

    scaling = report["scaling"]
    for ax, axis, xlabel in zip(axes[1], ("length", "image_size", "scales"),
                                ("answer tokens", "vision tokens (grid cells)", "scales")):
        for name, fit in scaling[axis].items():
            xs = [p[fit["x"]] for p in fit["points"]]
            label = name if fit["exponent"] is None else f"{name} (k = {fit['exponent']:.2f})"
            ax.plot(xs, [p["seconds"] for p in fit["points"]], "o-", label=label)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="seconds", title=f"4. scaling with {xlabel}")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(fontsize=8)
    for ax in axes.flat:  # plain numbers on log axes, minor ticks labelled at 2 and 5 only
        if ax.get_yscale() == "log":
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_label))
    fig.suptitle(f"mllm-explain bench{' --quick' if report['quick'] else ''}: {report['machine']['processor']}, "
                 f"{report['machine']['torch_threads']} torch threads", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=110)
    plt.close(fig)


def _minor_label(value: float, _position: int) -> str:
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if round(mantissa) in (2, 5) else ""

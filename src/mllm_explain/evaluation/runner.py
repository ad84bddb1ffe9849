"""The evaluation run behind `mllm-explain evaluate`: caption each sample once, explain the caption
with every method, score the maps, and write one JSON line per (sample, method) as it goes.

Output folder:
- `samples.jsonl`: one row per sample per method, flushed as written; a rerun skips the
  (sample_id, method) pairs already there and drops a truncated last line, so an interrupted run
  resumes without losing or repeating a sample.  Beside the methods there are two pseudo-methods:
  the plain-inference baseline (`generation`, or `forward` when the reference caption is
  teacher-forced) with the caption and its cost, and `random`, a seeded uniform random map per
  token scored like a method.  With `hallucination`, a third, `hallucination`: every object noun
  of the caption labelled grounded or hallucinated, with its grounding score and the baselines'
  (`evaluation/hallucination.py`); the summary then rates them as detectors.
- `summary.json` / `summary.csv`: dataset-level metrics per method; `by_word_class.json`;
  `metrics.png` and `curves.png`, each written atomically.
- Cost (`cost`): with "shared" (the default) each sample's forwards run once per distinct input and
  serve every method that reads them, and a generated caption's scale-1 trace is the generation's own
  states (`pipeline.SharedTraces`); a method row's `seconds` is then its own work (`seconds_own`: maps,
  scores' resampling) plus its share of the forwards it read (`seconds_forwards`: each forward's time
  divided among its readers; the generation's states cost nothing extra).  With "separate" every method
  runs its own forwards, as `explain` alone would, and `seconds` is that whole call.  Scores are the same
  either way.
- Protocol (`protocol`): "ours" (the default, `metrics.score_maps`) or "tam", TAM's eval.py to the letter
  (`tam_protocol`): the caption generated up to 256 tokens with its end token explained too, TAM's words,
  NLTK's word classes, uint8 maps on the token grid resized to the mask; a row then holds TAM's lists, and
  the summary pools them as TAM does (one NaN precision makes the mean NaN) and counts dropped captions.
  It scores plausibility only (no faithfulness curves, no teacher-forced reference captions).
- `settings.json`: the run's settings.  A rerun resumes only under the same settings for everything
  that changes a row (`ROW_SETTINGS`), so one summary never mixes two runs; `--limit` and
  `--methods` only choose which rows are computed and summarised and may change.  `fresh` starts
  the folder afresh.
"""

from __future__ import annotations

import csv
import io
import json
import math
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from PIL import Image

from mllm_explain.adapters.base import ModelAdapter, Trace
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import DEFAULT_PROMPTS, PROTOCOLS, Sample, load_samples
from mllm_explain.evaluation.hallucination import detection, noun_rows, sample_seed
from mllm_explain.evaluation.hallucination import markdown as hallucination_table
from mllm_explain.evaluation.metrics import (
    HIGHER_IS_BETTER,
    CaptionScores,
    deletion_insertion,
    f1_iou,
    mean,
    random_saliency,
    score_maps,
)
from mllm_explain.evaluation.tam_protocol import (
    LABEL_KINDS,
    TamScores,
    grid_uint8,
    pooled_mean,
    score_tam,
    tam_language,
    word_groups,
)
from mllm_explain.evaluation.words import synthetic_lexicon
from mllm_explain.explanation import Explanation, group_words, word_starts
from mllm_explain.images import load_image
from mllm_explain.limits import MAX_VISION_TOKENS
from mllm_explain.maps import box_grid, crop_resize
from mllm_explain.methods import get_method, option_text, options_for
from mllm_explain.outputs import atomic_path, locked_folder, write_text
from mllm_explain.pipeline import SharedTraces, explain, usable_scales
from mllm_explain.views import FULL_BOX

METRICS: tuple[str, ...] = tuple(HIGHER_IS_BETTER)
RANDOM = "random"
HALLUCINATION = "hallucination"
ANSWER_MODES = ("generate", "reference")
COST_MODES = ("shared", "separate")
# The measured fields of rows and summaries: they differ from run to run, and between cost modes
COST_FIELDS = ("seconds", "peak_mem_mb", "seconds_own", "seconds_forwards", "seconds_per_caption",
               "seconds_own_per_caption", "seconds_forwards_per_caption")
_NOTHING_SCORED = {"words": [], "mentions": [], "faithfulness": []}  # the row of an empty caption
SETTINGS = "settings.json"
RESULTS = ("samples.jsonl", "summary.json", "summary.csv", "by_word_class.json", "metrics.png", "curves.png")
# What a row depends on: every row of a run folder must come from the same values of these.
ROW_SETTINGS = ("model", "data", "format", "prompt", "answer", "options", "max_new_tokens", "faithfulness", "steps",
                "input_scale", "cost", "max_vision_tokens", "protocol")
MAX_NEW_TOKENS = {"ours": 64, "tam": 256}  # TAM's eval.py generates up to 256


@dataclass
class EvaluationConfig:
    """What to evaluate and where to write it; `options` go to every method that takes them (e.g. scales), and a
    key prefixed with a method (`msea.scales`) to that method alone (`methods.options_for`)."""

    data: Path
    fmt: str
    methods: list[str]
    out: Path
    limit: int | None = None
    answer: str = "generate"
    faithfulness: bool | None = None  # None: on under our protocol, off under TAM's (which has none)
    steps: int = 8
    options: dict = field(default_factory=dict)
    prompt: str | None = None
    max_new_tokens: int | None = None  # None: the protocol's (`MAX_NEW_TOKENS`)
    input_scale: float = 1.0  # every image (and its mask) is resized by this before anything else
    hallucination: bool = False
    cost: str = "shared"  # shared: one forward per distinct input for all methods | separate: each method its own
    max_vision_tokens: int = MAX_VISION_TOKENS  # the model's bound on every scale but 1 (`ModelAdapter`)
    protocol: str = "ours"  # how maps are scored: ours, or TAM's eval.py to the letter (module docstring)
    nltk_data: Path | None = None  # a folder with NLTK's tagger and WordNet for TAM's protocol (else NLTK's path)

    def __post_init__(self) -> None:
        if self.answer not in ANSWER_MODES:
            raise UserError(f"--answer must be one of {', '.join(ANSWER_MODES)}, got {self.answer!r}")
        if self.cost not in COST_MODES:
            raise UserError(f"--cost must be one of {', '.join(COST_MODES)}, got {self.cost!r}")
        if not 0 < self.input_scale <= 4:
            raise UserError(f"--input-scale must be in (0, 4], got {self.input_scale}")
        if not self.methods and not self.hallucination:
            raise UserError("--methods names no method")
        if self.max_vision_tokens < 1:
            raise UserError(f"--max-vision-tokens must be positive, got {self.max_vision_tokens}")
        if self.protocol not in PROTOCOLS:
            raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "tam" and self.answer != "generate":
            raise UserError("--protocol tam scores the model's own captions, as TAM's code does; drop --answer")
        if self.protocol == "tam" and self.faithfulness:
            raise UserError("--protocol tam scores plausibility only (TAM's code has no faithfulness); drop "
                            "--faithfulness")
        if self.faithfulness is None:
            self.faithfulness = self.protocol == "ours"
        if self.max_new_tokens is None:
            self.max_new_tokens = MAX_NEW_TOKENS[self.protocol]

    def settings(self, model: str) -> dict:
        """What settings.json records for a run of `model` (a path or hub id), as JSON values."""
        return json.loads(json.dumps({
            "model": model, "data": str(self.data.resolve()), "format": self.fmt,
            "prompt": self.prompt or DEFAULT_PROMPTS.get(self.fmt), "answer": self.answer,
            # every method's full options, defaults included: a release that changes a default changes rows
            "options": {m: get_method(m, **options_for(m, self.options)).options() for m in self.methods},
            "max_new_tokens": self.max_new_tokens, "faithfulness": self.faithfulness, "steps": self.steps,
            "input_scale": self.input_scale, "cost": self.cost, "methods": self.methods,
            "max_vision_tokens": self.max_vision_tokens, "protocol": self.protocol,
            "hallucination": self.hallucination,
            "limit": self.limit,
        }, default=str))

    @property
    def baseline(self) -> str:
        """Name of the plain-inference row: greedy generation, or one teacher-forced forward."""
        return "generation" if self.answer == "generate" else "forward"

    @property
    def rows_per_sample(self) -> list[str]:
        # random maps' plausibility is a baseline of TAM's protocol; under ours it comes with faithfulness
        random = (self.faithfulness or self.protocol == "tam") and self.methods
        return [self.baseline, *self.methods, *([RANDOM] if random else []),
                *([HALLUCINATION] if self.hallucination else [])]


@contextmanager
def measure(device: torch.device):
    """Wall time (time.perf_counter) and peak memory of the block, filled into the yielded dict.

    Peak memory is the extra memory at the block's high point, in MB: on CUDA the peak of
    allocated tensor memory; on a Linux CPU the process's resident high-water mark (VmHWM, reset
    through /proc/self/clear_refs on entry) minus the resident size on entry -- tracemalloc would
    miss torch's allocations; elsewhere the growth of ru_maxrss, a lower bound.
    """
    result: dict[str, float] = {}
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        hwm = _reset_high_water_mark()
        before = _status_kb("VmRSS") * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    yield result
    if cuda:
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = (_status_kb("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    result["seconds"] = time.perf_counter() - start
    result["peak_mem_mb"] = max(0.0, (peak - before) / 2**20)


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} missing from /proc/self/status")


def start_run(config: EvaluationConfig, model: str, fresh: bool = False) -> None:
    """Check the run folder's settings.json against this run's and record this run's.  Results already
    in the folder must come from the same `ROW_SETTINGS`, else resuming would mix two runs in one
    summary; `fresh` deletes the folder's results (`RESULTS`) and settings first."""
    out = config.out
    if fresh:
        for name in (SETTINGS, *RESULTS):
            (out / name).unlink(missing_ok=True)
    settings = config.settings(model)
    rows = out / "samples.jsonl"
    if rows.exists() and rows.stat().st_size:
        previous = _read_settings(out / SETTINGS)
        changed = [key for key in ROW_SETTINGS if _differs(key, previous.get(key), settings[key])]
        if changed:
            differences = "; ".join(f"{key} {_short(previous.get(key))} there, {_short(settings[key])} now"
                                    for key in changed)
            raise UserError(f"{out} holds results of a run with other settings ({differences}); rerun with its "
                            "settings to resume, add --fresh to start afresh (deletes those results), or choose "
                            "another --out")
    write_text(out / SETTINGS, json.dumps(settings, indent=1))


def _differs(key: str, before, now) -> bool:
    """Options are compared per method that both runs score (a method added on resume adds new rows)."""
    if key == "options" and isinstance(before, dict):
        return any(before.get(method, options) != options for method, options in now.items())
    if key == "cost" and before is None:  # runs from before the setting timed every method separately
        before = "separate"
    if key == "protocol" and before is None:  # runs from before the setting used ours
        before = "ours"
    return before != now


def _read_settings(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path.parent} holds results but no {SETTINGS} (an older version wrote them), so resuming "
                        "could mix runs; add --fresh to start afresh or choose another --out")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); add --fresh to start afresh") from None
    return settings if isinstance(settings, dict) else {}


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# --- rows -----------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict]:
    """The complete rows of `samples.jsonl`; a truncated last line (an interrupted write) is cut
    from the file so that appending starts on a fresh line."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):
        with path.open("r+b") as handle:
            handle.truncate(end)
    rows = []
    for line in raw[:end].splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _plain(value):
    """JSON-safe: NaN -> null, numpy scalars and arrays -> Python numbers and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _tam_row(scores: TamScores) -> dict:
    """A caption's row under TAM's protocol: its words (TAM's label as a class, tokens, noun threshold,
    function word's Func-IoU) and TAM's kept mentions; `dropped` when TAM's code would drop it."""
    return {
        "theta": scores.theta, "dropped": scores.dropped,
        "words": [{"word": word, "class": "object" if label > 0 else LABEL_KINDS[label],
                   "category": label if label > 0 else None, "tokens": group,
                   "threshold": scores.thresholds.get(index, math.nan),
                   "background": scores.backgrounds.get(index, math.nan)}
                  for index, (word, label, group) in enumerate(zip(scores.words, scores.labels, scores.groups))],
        "mentions": [{"iou": iou, "precision": precision, "recall": recall}
                     for iou, precision, recall in zip(scores.obj_iou, scores.precision, scores.recall)],
    }


def _scores_row(scores: CaptionScores) -> dict:
    return {
        "theta": scores.theta,
        "words": [{"word": w.word, "class": w.word_class.kind, "category": w.word_class.category,
                   "threshold": w.threshold, "background": w.background} for w in scores.words],
        "mentions": [{"words": m.words, "category": m.category, "token": m.token, "best_token": m.best_token,
                      "iou": m.iou, "precision": m.precision, "recall": m.recall} for m in scores.mentions],
    }


# --- the run --------------------------------------------------------------------------------------

class Evaluation:
    """One evaluation run over a dataset (see the module docstring for what it writes)."""

    def __init__(self, model: ModelAdapter, config: EvaluationConfig, samples: list[Sample] | None = None,
                 fresh: bool = False) -> None:
        self.model = model
        if isinstance(model, ModelAdapter):  # the run's bound on enlarged scales (a Ray driver holds no model)
            model.max_vision_tokens = config.max_vision_tokens
        self.config = config
        samples = samples if samples is not None else load_samples(config.data, config.fmt, config.prompt,
                                                                   config.protocol)
        self.samples = samples[:config.limit]
        # hallucinated nouns name categories absent from the image, so words are matched against every
        # category of the dataset (per-image category lists, as in GranDf's layout, would miss them)
        self.vocabulary = {name: cid for sample in samples for name, cid in sample.categories.items()}
        with locked_folder(config.out):
            start_run(config, model.name_or_path, fresh)
            self.path = config.out / "samples.jsonl"
            self.rows = read_rows(self.path)
        self._done = {(row["sample_id"], row["method"]) for row in self.rows}

    def run(self, advance: Callable[[int], None] | None = None) -> dict:
        """Evaluate every sample not yet done, then write and return the summary.  Rows are appended
        as they are made, so an interrupted run keeps them and a rerun resumes."""
        with locked_folder(self.config.out), self.path.open("a") as handle:
            for sample in self.samples:
                missing = self.missing(sample)
                if missing:
                    self.record(handle, self.sample_rows(sample, missing))
                if advance:
                    advance(1)
            return self.write_summary()

    def sample_rows(self, sample: Sample, missing: list[str]) -> Iterator[dict]:
        """The JSON-safe rows `missing` of `sample`, each as soon as it is made.  Touches no file of the
        out folder, so a worker process can make the rows of a run that another process writes."""
        return map(_plain, self._evaluate_sample(sample, missing))

    def record(self, handle: TextIO, rows: Iterable[dict]) -> None:
        """Append `rows` to samples.jsonl (open as `handle`), a flushed line each, and count them done."""
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            self.rows.append(row)
            self._done.add((row["sample_id"], row["method"]))

    def missing(self, sample: Sample) -> list[str]:
        """The rows of `sample` (method names) not yet in samples.jsonl."""
        return [m for m in self.config.rows_per_sample if (sample.sample_id, m) not in self._done]

    def completed(self) -> int:
        """How many of the selected samples have all their rows."""
        return sum(not self.missing(sample) for sample in self.samples)

    def _answer(self, sample: Sample, image: Image.Image) -> tuple[list[int], dict, Trace | None]:
        """The caption's token ids (re-tokenised from its text, so they are the ids `explain`
        sees), the baseline row with the cost of plain inference, and (shared cost) the generation's
        own scale-1 trace when the re-tokenised ids are the generated ones."""
        existing = next((r for r in self.rows if r["sample_id"] == sample.sample_id
                         and r["method"] == self.config.baseline), None)
        if existing is not None:
            return existing["answer_ids"], {}, None
        model, generated = self.model, None
        with measure(model.device) as cost:
            if self.config.protocol == "tam":  # the end token stays: TAM explains and scores it too
                ids = model.generate(image, sample.prompt, max_new_tokens=self.config.max_new_tokens, keep_stop=True)
            elif self.config.answer == "generate" and self.config.cost == "shared":
                gradients = any(get_method(m).needs_gradients for m in self.config.methods)
                ids, generated = model.generate_trace(image, sample.prompt, max_new_tokens=self.config.max_new_tokens,
                                                      gradients=gradients)
            elif self.config.answer == "generate":
                ids = model.generate(image, sample.prompt, max_new_tokens=self.config.max_new_tokens)
            else:  # a blank reference caption is an empty caption, scored as one
                ids = model.tokenize_answer(sample.caption) if sample.caption.strip() else []
                if ids:
                    model.answer_probabilities([image], sample.prompt, ids)
        generated_ids = ids
        text = model.tokenizer.decode(ids, skip_special_tokens=True).strip()
        if self.config.protocol == "ours":
            ids = model.tokenize_answer(text) if text else []
        if ids != generated_ids:  # the text reads back as other tokens: the methods need their own forward
            generated = None
        row = {"sample_id": sample.sample_id, "method": self.config.baseline, "model": model.name_or_path,
               "data": str(self.config.data), "image": str(sample.image), "prompt": sample.prompt,
               "answer": text, "answer_ids": ids, "references": list(sample.references), **cost}
        if self.config.answer == "generate":
            row["states_reused"] = generated is not None
        return ids, row, generated

    def _evaluate_sample(self, sample: Sample, missing: list[str]) -> Iterable[dict]:
        image, mask = self._inputs(sample)
        ids, baseline, generated = self._answer(sample, image)
        if baseline:
            yield baseline
        methods = [m for m in self.config.methods if m in missing]
        traces = None
        if self.config.cost == "shared" and ids and methods:
            traces = SharedTraces(self.model, image, sample.prompt, ids, generated)
            for method in methods:
                explainer = get_method(method, **options_for(method, self.config.options))
                traces.plan(explainer, usable_scales(self.model, image, explainer.scales, _quiet))
        for method in methods:
            yield self._method_row(sample, image, mask, ids, method, traces)
        if RANDOM in missing:
            yield self._random_row(sample, image, mask, ids)
        if HALLUCINATION in missing:
            yield self._hallucination_row(sample, image, mask, self.model.until_stop(ids))

    def _inputs(self, sample: Sample) -> tuple[Image.Image, np.ndarray | None]:
        """The sample's image and mask (read as the protocol reads it; None for a missing one under TAM's),
        both resized by `input_scale` (the mask by nearest neighbour)."""
        image, mask = load_image(sample.image), sample.mask(self.config.protocol)
        scale = self.config.input_scale
        if scale != 1.0:
            image = image.resize(_scaled(image.size, scale), Image.BICUBIC)
            if mask is not None:
                mask = np.asarray(Image.fromarray(mask).resize(_scaled(mask.shape[::-1], scale), Image.NEAREST))
        return image, mask

    def _method_row(self, sample: Sample, image: Image.Image, mask: np.ndarray, ids: list[int], method: str,
                    traces: SharedTraces | None = None) -> dict:
        row = {"sample_id": sample.sample_id, "method": method}
        if not ids:  # an empty caption has nothing to explain or score
            return {**row, "seconds": math.nan, "peak_mem_mb": math.nan, **_NOTHING_SCORED}
        options = options_for(method, self.config.options)
        if traces is not None:
            given = {"traces": traces}
        elif self.config.protocol == "tam":  # its own forwards, over the ids as generated (the end token's too)
            given = {"traces": SharedTraces(self.model, image, sample.prompt, ids)}
        else:
            given = {"answer": self.model.tokenizer.decode(ids, skip_special_tokens=True)}
        before = sum(traces.seconds.values()) if traces is not None else 0.0
        with measure(self.model.device) as cost:  # the cost includes the maps as the protocol scores them
            explanation = explain(self.model, image, sample.prompt, method=method, grounding=False, notice=_quiet,
                                  **given, **options)
            # ours: at the image's size, the mask's (checked when the samples load); TAM's: uint8 on the grid
            maps = explanation.image_maps if self.config.protocol == "ours" else grid_uint8(image_grid(explanation))
        if traces is not None:  # its own work, and its share of the forwards it read (run by whichever asked first)
            explainer = get_method(method, **options)
            own = cost["seconds"] - (sum(traces.seconds.values()) - before)
            share = traces.share(explainer, explanation.scales)
            cost = {**cost, "seconds": own + share, "seconds_own": own, "seconds_forwards": share}
        described = {"scales": list(explanation.scales), "vision_tokens": list(explanation.vision_tokens),
                     "views": len(explanation.views)}
        if self.config.protocol == "tam":
            return {**row, **cost, **_tam_row(self._tam_scores(sample, ids, maps, mask)), "faithfulness": [],
                    **described}
        scores = score_maps(maps, explanation.word_index, explanation.words, mask, sample.categories)
        faithful = self._faithfulness(sample, image, explanation.token_ids, scores, maps)
        return {**row, **cost, **_scores_row(scores), "faithfulness": faithful, **described}

    def _tam_scores(self, sample: Sample, ids: list[int], maps_u8: np.ndarray, mask: np.ndarray | None) -> TamScores:
        """TAM's scores of one caption's uint8 maps (one per generated token, the end token's included)."""
        words, groups = word_groups(self.model.tokenizer, ids)
        language = tam_language(self.config.nltk_data)
        return score_tam(maps_u8, words, groups, [language.label(word, sample.categories) for word in words], mask)

    def _random_row(self, sample: Sample, image: Image.Image, mask: np.ndarray, ids: list[int]) -> dict:
        row = {"sample_id": sample.sample_id, "method": RANDOM, "seconds": math.nan, "peak_mem_mb": math.nan}
        if not ids:
            return {**row, **_NOTHING_SCORED}
        seed = sample_seed(sample.sample_id)
        maps = np.stack([random_saliency((image.height, image.width), seed + t) for t in range(len(ids))])
        if self.config.protocol == "tam":  # at the image's size: random maps have no token grid
            return {**row, **_tam_row(self._tam_scores(sample, ids, grid_uint8(maps), mask)), "faithfulness": []}
        tokens = self.model.token_texts(ids)
        word_index = word_starts(tokens)
        scores = score_maps(maps, word_index, group_words(tokens, word_index), mask, sample.categories)
        return {**row, **_scores_row(scores), "faithfulness": self._faithfulness(sample, image, ids, scores, maps)}

    def _hallucination_row(self, sample: Sample, image: Image.Image, mask: np.ndarray, ids: list[int]) -> dict:
        row = {"sample_id": sample.sample_id, "method": HALLUCINATION}
        if not ids:
            return {**row, "nouns": []}
        tokens = self.model.token_texts(ids)
        word_index = word_starts(tokens)
        nouns = noun_rows(self.model, image, sample.prompt, ids, word_index, group_words(tokens, word_index),
                          self.vocabulary, set(np.unique(mask).tolist()), sample_seed(sample.sample_id))
        return {**row, "nouns": nouns}

    def _faithfulness(self, sample: Sample, image: Image.Image, ids: list[int], scores: CaptionScores,
                      maps: np.ndarray) -> list[dict]:
        """Deletion / insertion curves for each object mention whose category is in the mask."""
        if not self.config.faithfulness:
            return []
        items = []
        for mention in (m for m in scores.mentions if m.in_mask):
            curves = deletion_insertion(self.model, image, sample.prompt, ids, mention.token, maps[mention.token],
                                        steps=self.config.steps)
            items.append({"token": mention.token, "deletion": curves.deletion, "insertion": curves.insertion,
                          "deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc})
        return items

    # --- summary ------------------------------------------------------------------------------

    def _selected_rows(self) -> dict[str, list[dict]]:
        ids = {s.sample_id for s in self.samples}
        by_method: dict[str, list[dict]] = {m: [] for m in self.config.rows_per_sample}
        for row in self.rows:
            if row["sample_id"] in ids and row["method"] in by_method:
                by_method[row["method"]].append(row)
        return by_method

    def summary(self) -> dict:
        """Dataset-level metrics per method: Obj-IoU, precision, recall and AUCs pooled over object
        mentions, Func-IoU over function words, F1-IoU from the two means, cost per caption (missing
        values -- a mention absent from the mask, the cost of `random` -- are left out of means)."""
        methods = {}
        selected = self._selected_rows()
        hallucination = selected.pop(HALLUCINATION, None)
        tam = self.config.protocol == "tam"
        average = pooled_mean if tam else mean  # TAM's pools every value: one NaN precision makes its mean NaN
        for method, rows in selected.items():
            mentions = [m for r in rows for m in r.get("mentions", [])]
            faithful = [f for r in rows for f in r.get("faithfulness", [])]
            obj = average([m["iou"] for m in mentions])
            func = average([w["background"] for r in rows for w in r.get("words", [])
                            if w["class"] == "function" and w["background"] is not None])
            methods[method] = {
                "obj_iou": obj, "func_iou": func, "f1_iou": f1_iou(obj, func),
                "precision": average([m["precision"] for m in mentions]),
                "recall": average([m["recall"] for m in mentions]),
                "insertion_auc": mean([f["insertion_auc"] for f in faithful]),
                "deletion_auc": mean([f["deletion_auc"] for f in faithful]),
                "seconds_per_caption": mean([r["seconds"] for r in rows]),
                "peak_mem_mb": mean([r["peak_mem_mb"] for r in rows]),
                **({"dropped": sum(bool(r.get("dropped")) for r in rows)} if tam and method != self.config.baseline
                   else {}),
            }
        summary = {"methods": methods, "n_samples": len(self.samples), "protocol": self.config.protocol,
                   "model": self.model.name_or_path,
                   "data": str(self.config.data), "cost": self.cost_summary(selected),
                   "changed_options": self.changed_options()}
        if hallucination is not None:  # in the dataset's order, so that the bootstrap's draws do not depend on
            order = {sample.sample_id: i for i, sample in enumerate(self.samples)}  # the order rows were written
            rows = sorted(hallucination, key=lambda row: order[row["sample_id"]])
            summary["hallucination"] = detection([row["nouns"] for row in rows])
        return summary

    def changed_options(self) -> dict[str, dict]:
        """Per method, the options of this run that differ from the method's defaults (JSON values)."""
        changed = {}
        for method in self.config.methods:
            default, used = get_method(method).options(), get_method(method, **options_for(method, self.config.options))
            changed[method] = {key: value for key, value in used.options().items() if default[key] != value}
        return json.loads(json.dumps(changed))

    def cost_summary(self, selected: dict[str, list[dict]]) -> dict:
        """What `seconds_per_caption` means in this run, and (shared cost) its two parts per method."""
        if self.config.cost == "separate":
            return {"mode": "separate", "seconds_per_caption": "each method's whole explain call, its own forwards "
                                                               "included"}
        parts = {key: {method: mean([r.get(key, math.nan) for r in rows]) for method, rows in selected.items()
                       if method in self.config.methods} for key in ("seconds_own", "seconds_forwards")}
        return {"mode": "shared",
                "seconds_per_caption": "the method's own work (seconds_own) plus its share of the sample's forwards "
                                       "(seconds_forwards: each forward's time divided among the methods that read "
                                       "it; a generated caption's scale-1 trace is the generation's states, free)",
                "seconds_own_per_caption": parts["seconds_own"],
                "seconds_forwards_per_caption": parts["seconds_forwards"]}

    def by_word_class(self) -> dict:
        """Per method and word class: mean Obj-IoU (object nouns) and mean background fraction (the
        Func-IoU score, for every class), with counts.  Synthetic data splits 'other' into colour,
        size, count and relation words."""
        lexicon = synthetic_lexicon() if self.config.fmt == "synthetic" else {}
        result = {}
        for method, rows in self._selected_rows().items():
            if method in (self.config.baseline, HALLUCINATION):
                continue
            classes: dict[str, list[float]] = {}
            for word in (w for r in rows for w in r.get("words", [])):
                name = word["class"] if word["class"] != "other" else lexicon.get(word["word"].lower(), "other")
                classes.setdefault(name, []).append(word["background"])
            ious = [m["iou"] for r in rows for m in r.get("mentions", []) if m["iou"] is not None]
            result[method] = {name: {"n": len(values), "func_iou": mean(values),
                                     **({"obj_iou": mean(ious), "n_mentions": len(ious)} if name == "object" else {})}
                              for name, values in sorted(classes.items())}
        return result

    def mean_curves(self) -> dict[str, dict[str, list[float]]]:
        """Mean deletion and insertion curves per method (methods with no curve are left out)."""
        curves = {}
        for method, rows in self._selected_rows().items():
            items = [f for r in rows for f in r.get("faithfulness", [])]
            if items:
                curves[method] = {kind: np.mean([f[kind] for f in items], axis=0).tolist()
                                  for kind in ("deletion", "insertion")}
        return curves

    def write_summary(self) -> dict:
        """summary.json, summary.csv, by_word_class.json, metrics.png and curves.png; returns the summary."""
        out = self.config.out
        summary = self.summary()
        write_text(out / "summary.json", json.dumps(_plain(summary), indent=1))
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["method", *METRICS])
        for method, values in summary["methods"].items():
            writer.writerow([method, *("" if math.isnan(values[k]) else f"{values[k]:.6g}" for k in METRICS)])
        write_text(out / "summary.csv", table.getvalue())
        write_text(out / "by_word_class.json", json.dumps(_plain(self.by_word_class()), indent=1))
        plot_metrics(summary, out / "metrics.png")
        plot_curves(self.mean_curves(), out / "curves.png")
        return summary


def markdown_table(summary: dict) -> str:
    """The summary as a markdown table, one row per method; arrows say which direction is better."""
    header = ["method", *(f"{k} {'↑' if HIGHER_IS_BETTER[k] else '↓'}" for k in METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, values in summary["methods"].items():
        cells = ["–" if values[k] is None or math.isnan(values[k]) else f"{values[k]:.3f}" for k in METRICS]
        label = method + _changed(summary.get("changed_options", {}).get(method))
        lines.append("| " + " | ".join([label, *cells]) + " |")
    lines.append(f"\n{summary['n_samples']} samples, model {summary['model']}, data {summary['data']}, "
                 f"protocol {summary.get('protocol', 'ours')}")
    dropped = {method: values["dropped"] for method, values in summary["methods"].items() if values.get("dropped")}
    if dropped:
        lines.append("captions dropped as TAM's code drops them (re-tokenised words do not match the maps): "
                     + ", ".join(f"{method} {count}" for method, count in dropped.items()))
    if "hallucination" in summary:
        lines += ["", hallucination_table(summary["hallucination"])]
    return "\n".join(lines)


def _changed(options: dict | None) -> str:
    """' (scales=1,1.5)': a method's options that differ from its defaults, for its row's label."""
    if not options:
        return ""
    return " (" + ", ".join(f"{key}={option_text(value)}" for key, value in options.items()) + ")"


def image_grid(explanation: Explanation) -> np.ndarray:
    """(T, gh, gw) maps on the token grid's cells that cover the image: the grid itself for most models
    (TAM's map), the image's box of it for models whose grid also covers padding."""
    if explanation.image_box == FULL_BOX:
        return explanation.grid_maps
    size = box_grid(explanation.grid_maps.shape[1:], explanation.image_box)
    return crop_resize(torch.from_numpy(np.asarray(explanation.grid_maps, dtype=np.float32)), explanation.image_box,
                       size).numpy()


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def plot_metrics(summary: dict, path: Path) -> None:
    """One small bar chart per metric, a bar per method (missing values leave no bar)."""
    from matplotlib.figure import Figure

    names = list(summary["methods"])
    figure = Figure(figsize=(12, 9), layout="constrained")
    for ax, metric in zip(figure.subplots(3, 3).flat, METRICS):
        values = [summary["methods"][n][metric] for n in names]
        ax.bar(names, [math.nan if v is None else v for v in values], color="tab:blue")
        ax.set_title(f"{metric} ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)", fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    figure.suptitle(f"{summary['n_samples']} samples, {summary['model']}")
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=100)


def plot_curves(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Mean deletion and insertion curves, one line per method."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    for ax, kind in zip(figure.subplots(1, 2), ("deletion", "insertion")):
        for method, values in curves.items():
            ax.plot(np.linspace(0, 1, len(values[kind])), values[kind], marker="o", label=method,
                    linestyle="--" if method == RANDOM else "-")
        ax.set_xlabel(f"fraction of pixels {'blurred' if kind == 'deletion' else 'revealed'} (by the map)")
        ax.set_ylabel("token probability")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)")
        if curves:
            ax.legend(fontsize=8)
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=100)


def _quiet(_line: str) -> None:
    """A skipped scale is not announced per sample: the row's `scales` says which scales were used."""

"""Hallucination detection, scored: every object noun of a caption is labelled grounded or
hallucinated against the image's mask (a named category the mask lacks is hallucinated, as CHAIR
labels COCO captions), and each per-token score is rated by how well a low value finds the
hallucinated nouns (AUROC, average precision), with intervals from a bootstrap over samples.

The scores: the explanation's grounding score (`mllm_explain.grounding`) and four baselines -- the
token's probability alone, the raw logit-lens map's peak, the last layer's attention mass on the
image, and a seeded random score.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from mllm_explain.adapters.base import ModelAdapter, Trace
from mllm_explain.evaluation.metrics import object_mentions
from mllm_explain.evaluation.words import classify_words
from mllm_explain.grounding import grounding_scores
from mllm_explain.methods.base import base_scores

SCORES: tuple[str, ...] = ("grounding", "probability", "logit_lens_peak", "attention_mass", "random")
BASELINE = "probability"  # the score the grounding score must beat
BOOTSTRAP = 1000


def noun_rows(model: ModelAdapter, image: Image.Image, prompt: str, ids: list[int], word_index: list[int],
              words: list[str],
              vocabulary: dict[str, int], present: set[int], seed: int) -> list[dict]:
    """One dict per object-noun mention of the caption: its word, token, category, label and every
    score in `SCORES` (the token read is the first token of the mention's head word)."""
    mentions = object_mentions(classify_words(words, vocabulary), word_index)
    if not mentions:
        return []
    trace = model.trace(image, prompt, ids, attention=True)
    scores = base_scores(trace, model)
    grounding = grounding_scores(model, image, prompt, ids, {1.0: scores.token_probability.numpy()})
    peak = scores.answer_maps.max(1).values.numpy()
    attention = attention_mass(trace)
    rng = np.random.default_rng(seed)
    return [{"word": " ".join(words[w] for w in m.words), "token": m.token, "category": m.category,
             "hallucinated": m.category not in present,
             "scores": {"grounding": float(grounding[m.token]), "probability": float(scores.token_probability[m.token]),
                        "logit_lens_peak": float(peak[m.token]), "attention_mass": float(attention[m.token]),
                        "random": float(rng.random())}}
            for m in mentions]


def attention_mass(trace: Trace) -> np.ndarray:
    """(T,) share of the last layer's attention (mean over heads) that the position predicting each
    answer token pays to the vision tokens."""
    return trace.attention[:, trace.vision_positions].sum(1).numpy()


def sample_seed(sample_id: str) -> int:
    """The random score's seed for a sample: fixed by its id, so reruns and workers agree."""
    return zlib.crc32(sample_id.encode())


def detection(rows_per_sample: Sequence[list[dict]], resamples: int = BOOTSTRAP, seed: int = 0) -> dict:
    """AUROC and AP of every score for finding hallucinated nouns (a low score flags one), with
    95% percentile intervals from a bootstrap over samples, and each score's paired AUROC difference
    from `BASELINE`.  AUROC and AP are NaN (null in summary.json) when the labels are all one class;
    samples whose caption names no object are left out (`n_samples` counts the rest)."""
    groups = [rows for rows in rows_per_sample if rows]
    labels = [np.array([r["hallucinated"] for r in rows], dtype=bool) for rows in groups]
    scores = {name: [np.array([r["scores"][name] for r in rows], dtype=np.float64) for rows in groups]
              for name in SCORES}
    n_nouns = sum(len(y) for y in labels)
    n_hallucinated = int(sum(y.sum() for y in labels))
    result = {"n_samples": len(groups), "n_nouns": n_nouns, "n_hallucinated": n_hallucinated,
              "rate": n_hallucinated / n_nouns if n_nouns else math.nan, "scores": {}}
    if not 0 < n_hallucinated < n_nouns:
        result["scores"] = {name: {"auroc": math.nan, "ap": math.nan} for name in SCORES}
        return result
    draws = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
    boot = {name: _bootstrap(labels, values, draws) for name, values in scores.items()}
    for name in SCORES:
        y, s = np.concatenate(labels), np.concatenate(scores[name])
        auroc, ap = _rate(y, s)
        difference = boot[name][:, 0] - boot[BASELINE][:, 0]
        result["scores"][name] = {
            "auroc": auroc, "auroc_ci": _interval(boot[name][:, 0]),
            "ap": ap, "ap_ci": _interval(boot[name][:, 1]),
            f"auroc_minus_{BASELINE}": auroc - _rate(y, np.concatenate(scores[BASELINE]))[0],
            f"auroc_minus_{BASELINE}_ci": _interval(difference),
        }
    return result


def _rate(hallucinated: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(AUROC, AP) of -score for the hallucinated class."""
    return (float(roc_auc_score(hallucinated, -score)), float(average_precision_score(hallucinated, -score)))


def _bootstrap(labels: list[np.ndarray], values: list[np.ndarray], draws: np.ndarray) -> np.ndarray:
    """(resamples, 2) AUROC and AP over resampled samples (a draw with one class only is NaN)."""
    out = np.full((len(draws), 2), np.nan)
    for i, draw in enumerate(draws):
        y = np.concatenate([labels[k] for k in draw])
        if 0 < y.sum() < len(y):
            out[i] = _rate(y, np.concatenate([values[k] for k in draw]))
    return out


def _interval(values: np.ndarray) -> list[float]:
    kept = values[~np.isnan(values)]
    return [float(np.percentile(kept, 2.5)), float(np.percentile(kept, 97.5))] if len(kept) else [math.nan, math.nan]


def markdown(result: dict) -> str:
    """The detection table: one row per score, AUROC and AP with intervals, and AUROC minus the baseline's."""
    lines = [f"hallucination: {result['n_hallucinated']} of {result['n_nouns']} object nouns in "
             f"{result['n_samples']} captions are not in the image ({_percent(result['rate'])})", "",
             f"| score | AUROC ↑ | AP ↑ | AUROC − {BASELINE} |", "|---|---|---|---|"]
    for name, values in result["scores"].items():
        if "auroc_ci" not in values:
            lines.append(f"| {name} | – | – | – |")
            continue
        gain = _with_ci(values[f"auroc_minus_{BASELINE}"], values[f"auroc_minus_{BASELINE}_ci"], sign=True)
        lines.append(f"| {name} | {_with_ci(values['auroc'], values['auroc_ci'])} | "
                     f"{_with_ci(values['ap'], values['ap_ci'])} | {gain} |")
    return "\n".join(lines)


def _with_ci(value: float, interval: list[float], sign: bool = False) -> str:
    form = "+.3f" if sign else ".3f"
    return f"{value:{form}} ({interval[0]:{form}}..{interval[1]:{form}})"


def _percent(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"

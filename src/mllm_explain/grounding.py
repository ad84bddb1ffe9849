"""Grounding score per answer token: does the word hold up when the model sees the image in detail?

    grounding(t) = min(p_1(x_t), p_s*(x_t)),  s* = the largest scale up to 2x the model accepts
                                              (p_1 alone when that is under 1.5x)

where p_s is the teacher-forced probability of answer token x_t with the image at scale s (MSEA's
views of the same answer).  A word the image supports stays probable in the more detailed view; a
word the model made up (a category that is not there, or one it misread at low resolution) loses
probability there.  Designed on validation scenes only (docs/RESULTS.md, "Hallucination"): the map
features (peak, concentration, image-vs-text share, agreement across scales) separated hallucinated
nouns far worse, because the bundled model's hallucinations are misnamed objects its maps still find.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.evaluation.words import classify_words

MAX_DETAIL_SCALE = 2.0  # bounds the extra forward's cost: at most 4x the vision tokens
MIN_DETAIL_SCALE = 1.5  # chosen on validation: a view barely larger adds no detail, only noise (docs/RESULTS.md)
THRESHOLD = 0.3  # best F1 on validation (docs/RESULTS.md): nouns below it are marked as maybe not in the image


def detail_scale(model: ModelAdapter, image: Image.Image) -> float:
    """s*: the largest scale up to `MAX_DETAIL_SCALE` the model accepts for `image`; 1 when that is
    under `MIN_DETAIL_SCALE` (fixed-resolution encoders, images near the model's largest input)."""
    scale = min(MAX_DETAIL_SCALE, model.max_scale(image))
    return scale if scale >= MIN_DETAIL_SCALE else 1.0


def grounding_scores(model: ModelAdapter, image: Image.Image, prompt: str, answer_ids: Sequence[int],
                     known: Mapping[float, np.ndarray] | None = None,
                     cache: dict[float, np.ndarray] | None = None) -> np.ndarray:
    """(T,) grounding score of every answer token in [0, 1].  `known` maps a scale to the answer
    tokens' probabilities a caller already has there (e.g. from its scale-1 trace), which replace
    that scale's forward; `cache` keeps the probabilities computed here for later calls (and is read
    like `known`)."""
    known = {**(cache or {}), **(known or {})}
    probabilities = []
    for scale in sorted({1.0, detail_scale(model, image)}):
        if scale in known:
            probabilities.append(np.asarray(known[scale]))
        else:
            scaled, _ = model.scaled_image(image, scale)
            probabilities.append(model.answer_probabilities([scaled], prompt, answer_ids)[0].numpy())
            if cache is not None:
                cache[scale] = probabilities[-1]
    return np.minimum.reduce(probabilities).astype(np.float64)


def ungrounded_words(words: Sequence[str], word_grounding: Sequence[float], threshold: float = THRESHOLD) -> list[int]:
    """Indices of the nouns (lexicon nouns: objects, not function or colour words) whose grounding
    score is below `threshold`: the words a reader should doubt."""
    classes = classify_words(list(words), {})
    return [i for i, (cls, score) in enumerate(zip(classes, word_grounding))
            if cls.is_noun and score is not None and score < threshold]

"""Grounding score per answer token: does the word hold up when the model sees the image in detail?

    grounding(t) = min(p_1(x_t), p_s*(x_t)),  s* = 2 where the model's processor as shipped takes the
                                              image at 1.5x or more (`ModelAdapter.max_scale`), else
                                              no detail view (p_1 alone)

where p_s is the teacher-forced probability of answer token x_t with the image at scale s (MSEA's
views of the same answer; s* is MSEA's enlarged scale, so its trace serves both, `pipeline.explain`).
The detail view is taken only for an image small enough to be seen in more detail within the inputs
the processor gives by default: for an image already at the processor's largest input, the bundled
model's 2x view flags correct words (validation AUROC 0.586 against 0.948 for p_1).

A word the image supports stays probable in the more detailed view; a
word the model made up (a category that is not there, or one it misread at low resolution) loses
probability there.  Designed on validation scenes only (docs/RESULTS.md, "Hallucination"): the map
features (peak, concentration, image-vs-text share, agreement across scales) separated hallucinated
nouns far worse, because the bundled model's hallucinations are misnamed objects its maps still find.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mllm_explain.adapters.base import Media, ModelAdapter, as_images
from mllm_explain.errors import UserError
from mllm_explain.evaluation.words import classify_words
from mllm_explain.video import Video

MAX_DETAIL_SCALE = 2.0  # the detail view: MSEA's enlarged scale, at most 4x the vision tokens
MIN_DETAIL_SCALE = 1.5  # chosen on validation: a view barely larger adds no detail, only noise (docs/RESULTS.md)
THRESHOLD = 0.15  # best F1 on validation (docs/RESULTS.md §7): nouns below it are marked as maybe not in the image


def detail_scale(model: ModelAdapter, image: Media) -> float:
    """s*: `MAX_DETAIL_SCALE` where the processor as shipped takes `image` (every one of several) at
    `MIN_DETAIL_SCALE` or more (`max_scale`), or the largest scale `max_vision_tokens` allows below it; 1 where it
    does not (fixed-resolution encoders, images near the model's largest input, a video)."""
    if isinstance(image, Video):  # fed at the video processor's own size only
        return 1.0
    images = as_images(image)
    largest = min(model.max_scale(one) for one in images)
    if largest < MIN_DETAIL_SCALE:
        return 1.0
    try:
        for one in images:
            model.check_scale(one, MAX_DETAIL_SCALE)
    except UserError:  # beyond max_vision_tokens
        return min(MAX_DETAIL_SCALE, largest)
    return MAX_DETAIL_SCALE


def grounding_scores(model: ModelAdapter, image: Media, prompt: str,
                     answer_ids: Sequence[int], known: Mapping[float, np.ndarray] | None = None) -> np.ndarray:
    """(T,) grounding score of every answer token in [0, 1], for a prompt's image or images.  `known` maps a scale
    to the answer tokens' probabilities a caller already has there (e.g. from its traces), which replace that
    scale's forward."""
    known = known or {}
    probabilities = [np.asarray(known[scale]) if scale in known else
                     model.answer_probabilities([image], prompt, answer_ids, scale=scale)[0].numpy()
                     for scale in sorted({1.0, detail_scale(model, image)})]
    return np.minimum.reduce(probabilities).astype(np.float64)


def ungrounded_words(words: Sequence[str], word_grounding: Sequence[float], threshold: float = THRESHOLD) -> list[int]:
    """Indices of the nouns (lexicon nouns: objects, not function or colour words) whose grounding
    score is below `threshold`: the words a reader should doubt."""
    classes = classify_words(list(words), {})
    return [i for i, (cls, score) in enumerate(zip(classes, word_grounding))
            if cls.is_noun and score is not None and score < threshold]

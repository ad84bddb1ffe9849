"""Pointing game of object nouns on synthetic scenes: does a noun's map peak inside its object?

The explainability gate of the bundled model uses the raw logit-lens map (DESIGN §2) of every
object noun of the reference caption (teacher-forced), against a uniformly random pixel.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.data.synth import CATEGORY_IDS, DEFAULT_PROMPT, NOUN_CATEGORY, Scene
from mllm_explain.pipeline import explain


def pointing_game(model: ModelAdapter, scenes: Iterable[Scene], method: str = "logit_lens", input_scale: float = 1.0,
                  **options) -> dict:
    """Hit rate of each object noun's map maximum inside its category's mask, and the hit rate a
    uniformly random pixel would have on the same nouns (the mask's area fraction).  `input_scale` resizes
    each scene (bicubic) before the model sees it, as a smaller photo or an MSEA scale would reach it; the
    maps are read at the mask's size."""
    hits, chance = [], []
    for scene in scenes:
        image = Image.fromarray(scene.image)
        if input_scale != 1.0:
            image = image.resize((max(1, round(image.width * input_scale)), max(1, round(image.height * input_scale))),
                                 Image.BICUBIC)
        result = explain(model, image, DEFAULT_PROMPT, answer=scene.caption, method=method, grounding=False,
                         **options)
        for w, word in enumerate(result.words):
            category = NOUN_CATEGORY.get(word.strip(".,").lower())
            if category is None:
                continue
            mask = scene.seg_label == CATEGORY_IDS[category]
            peak = np.unravel_index(np.argmax(result.word_map(w, mask.shape)), mask.shape)
            hits.append(bool(mask[peak]))
            chance.append(float(mask.mean()))
    return {"pointing": float(np.mean(hits)), "random_pixel": float(np.mean(chance)), "n_nouns": len(hits),
            "method": method, "input_scale": input_scale}

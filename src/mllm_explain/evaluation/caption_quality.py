"""Caption quality of a model on synthetic scenes: object recall, hallucination, colour accuracy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mllm_explain.data.synth import COLOURS, NOUN_CATEGORY, Scene


def named_objects(caption: str) -> list[tuple[str, str | None]]:
    """(category, colour or None) for every category noun in `caption`, colour = nearest preceding
    colour word within the same noun phrase (two words back at most: 'large red circle')."""
    words = re.findall(r"[a-z]+", caption.lower())
    found = []
    for i, word in enumerate(words):
        if word in NOUN_CATEGORY:
            colour = next((w for w in reversed(words[max(0, i - 2):i]) if w in COLOURS), None)
            found.append((NOUN_CATEGORY[word], colour))
    return found


@dataclass
class CaptionScore:
    present: int  # categories in the image
    recalled: int  # present categories the caption names
    named: int  # distinct categories the caption names
    hallucinated: int  # named categories absent from the image
    coloured: int  # named present objects that carry a colour word
    colour_correct: int  # ... whose colour matches an object of that category in the image


def score_caption(caption: str, scene: Scene) -> CaptionScore:
    truth: dict[str, set[str]] = {}
    for obj in scene.objects:
        truth.setdefault(obj.category, set()).add(obj.colour)
    named = named_objects(caption)
    named_categories = {c for c, _ in named}
    coloured = [(c, col) for c, col in named if c in truth and col is not None]
    return CaptionScore(
        present=len(truth), recalled=len(named_categories & truth.keys()), named=len(named_categories),
        hallucinated=len(named_categories - truth.keys()), coloured=len(coloured),
        colour_correct=sum(col in truth[c] for c, col in coloured),
    )


def summarise(scores: list[CaptionScore]) -> dict[str, float]:
    """Dataset-level ratios (micro-averaged over objects)."""
    total = lambda name: sum(getattr(s, name) for s in scores)  # noqa: E731
    return {
        "object_recall": total("recalled") / max(1, total("present")),
        "hallucination": total("hallucinated") / max(1, total("named")),
        "colour_accuracy": total("colour_correct") / max(1, total("coloured")),
        "n_scenes": len(scores),
    }

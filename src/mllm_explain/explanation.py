"""`Explanation`: the result of explaining one answer, token by token.  Writing it to disk (arrays,
JSON, the interactive HTML report) is `mllm_explain.report.save` (`mllm_explain.save_report`).

Its views for people (`_repr_html_` in Jupyter, `show`, `plot`) are thin calls into `mllm_explain.notebook`, which
renders through the report; both are imported only when a view is asked for, so importing this module loads neither,
and they name `Explanation` only for type checking, so the package's import graph keeps no cycle."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from mllm_explain.grounding import THRESHOLD as GROUNDING_THRESHOLD
from mllm_explain.grounding import ungrounded_words
from mllm_explain.maps import crop_resize
from mllm_explain.views import FULL_BOX, Box


def word_starts(tokens: list[str]) -> list[int]:
    """Word index of every token: a token that starts with a space (or '▁'/'Ġ'), or is punctuation,
    starts a new word (DESIGN §6)."""
    index, result = -1, []
    for i, text in enumerate(tokens):
        stripped = text.strip()
        starts = (i == 0 or text[:1] in (" ", "▁", "Ġ", "\n")
                  or (stripped and all(c in string.punctuation for c in stripped))
                  or (result and tokens[i - 1].strip() and all(c in string.punctuation for c in tokens[i - 1].strip())))
        index += bool(starts)
        result.append(index)
    return result


def group_words(tokens: list[str], word_index: list[int]) -> list[str]:
    """The words `word_index` groups the tokens into: each the stripped concatenation of its tokens."""
    words = [""] * (max(word_index, default=-1) + 1)
    for text, w in zip(tokens, word_index):
        words[w] += text
    return [w.strip() for w in words]


@dataclass
class Explanation:
    """Per image k of the prompt (`images`; most prompts have one) and answer token t: `image_grid_maps[k][t]`
    (gh, gw) in [0, 1] over the `image_box` part of image k's vision grid (`grid_maps`: the first image's),
    `relevance[t, j]` for context token j (prompt tokens, then answer tokens; NaN where j is not before t), the
    top next-token `candidates[t]` as (text, probability), and `grounding[t]`, how well the image supports the
    token (`mllm_explain.grounding`; None when not computed).

    Maps are kept at the grid, so memory does not grow with the image's pixels; `maps_at` and
    `word_map` resample them (bilinearly) to the image or any other size on demand.

    `views` describes the grids the model's vision tokens form at scale 1 (`adapters.base.View.describe`:
    kind, grid, image_box, grid_box, image_index): one for most models, tiles and an overview for tiled
    ones, whose maps compose them (`maps.compose`) into their image's.  `view_maps[i]` (T, gh, gw) are view i's
    maps from the scale-1 trace before composition and aggregation (None when the method makes none).

    Several images' maps share one scale per token unless the method's `image_normalise` was "each", so
    `image_shares` says which image each token draws on."""

    method: str
    options: dict
    prompt: str
    images: list[Image.Image]
    tokens: list[str]
    token_ids: list[int]
    image_grid_maps: list[np.ndarray]
    context_tokens: list[str]
    relevance: np.ndarray
    candidates: list[list[tuple[str, float]]]
    model: str = ""
    image_box: Box = FULL_BOX
    word_index: list[int] = field(default_factory=list)
    grounding: np.ndarray | None = None
    scales: tuple[float, ...] = (1.0,)  # the input scales the maps come from (those the model could take)
    vision_tokens: tuple[int, ...] = ()  # vision tokens each of those scales fed: what the maps cost
    views: list[dict] = field(default_factory=list)
    view_maps: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not self.word_index:
            self.word_index = word_starts(self.tokens)
        if len(self.images) != len(self.image_grid_maps) or not self.images:
            raise ValueError(f"{len(self.images)} images and {len(self.image_grid_maps)} images' maps")

    @property
    def image(self) -> Image.Image:
        """The first (or only) image."""
        return self.images[0]

    @property
    def grid_maps(self) -> np.ndarray:
        """(T, gh, gw): the first (or only) image's maps at its grid."""
        return self.image_grid_maps[0]

    @property
    def image_shares(self) -> np.ndarray:
        """(T, K): each token's share of its map mass on each of the K images (the sum over each image's grid
        cells), which image a word draws on; rows sum to 1 (uniform where a map is all zero)."""
        mass = np.stack([np.asarray(maps, dtype=np.float64).sum(axis=(1, 2)) for maps in self.image_grid_maps], 1)
        total = mass.sum(1, keepdims=True)
        return np.where(total > 0, mass / np.where(total > 0, total, 1), 1 / len(self.images))

    def frames_of(self, index: int) -> dict:
        """A video's image `index`: the sampled frames its maps merge and their times in seconds ({} for an image)."""
        view = next((view for view in self.views if view.get("image_index", 0) == index and "frames" in view), None)
        return {} if view is None else {"frames": view["frames"], "times": view["times"]}

    def for_image(self, index: int) -> Explanation:
        """This explanation of image `index` alone: its image, its maps and its views (the tokens, relevances and
        scores are the whole answer's).  The report draws each image's panel from it."""
        views = [view for view in self.views if view.get("image_index", 0) == index]
        view_maps = None if self.view_maps is None else [
            maps for view, maps in zip(self.views, self.view_maps) if view.get("image_index", 0) == index]
        return replace(self, images=[self.images[index]], image_grid_maps=[self.image_grid_maps[index]],
                       views=views, view_maps=view_maps)

    @property
    def answer(self) -> str:
        return "".join(self.tokens).strip()

    @property
    def words(self) -> list[str]:
        """The answer's words, each the concatenation of its tokens."""
        return group_words(self.tokens, self.word_index)

    @property
    def word_grounding(self) -> list[float | None]:
        """Each word's grounding score: its first token's, where the word is decided."""
        if self.grounding is None:
            return [None] * len(self.words)
        first = {w: t for t, w in reversed(list(enumerate(self.word_index)))}
        return [float(self.grounding[first[w]]) for w in range(len(self.words))]

    @property
    def ungrounded_words(self) -> list[int]:
        """Indices of the nouns whose grounding score is below `grounding.THRESHOLD`: maybe not in the image."""
        return ungrounded_words(self.words, self.word_grounding)

    def maps_at(self, size: tuple[int, int] | None = None, tokens: Sequence[int] | None = None) -> np.ndarray:
        """(len(tokens), height, width) maps in [0, 1] of `tokens` (default: all) over the first image (`for_image`
        for another), resampled to `size` (default: the image's (height, width)); T x height x width float32
        values, so mind `size` for large images."""
        grid = self.grid_maps if tokens is None else self.grid_maps[list(tokens)]
        size = size or (self.image.height, self.image.width)
        maps = torch.from_numpy(np.asarray(grid, dtype=np.float32))
        return crop_resize(maps, self.image_box, size).clamp(0, 1).numpy()

    @property
    def image_maps(self) -> np.ndarray:
        """(T, H, W): every token's map at the image's resolution, resampled on each access."""
        return self.maps_at()

    def word_map(self, word: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """A word's map at `size` (default: the image's): the element-wise max over its tokens' maps."""
        return self.phrase_map(word, word, size)

    def phrase_map(self, first: int, last: int, size: tuple[int, int] | None = None, image: int = 0) -> np.ndarray:
        """One map for the run of words `first`..`last` (word indices, both included) over image `image`, at `size`
        (default: that image's (height, width)): the element-wise max over their tokens' maps."""
        count = len(self.words)
        if not 0 <= first <= last < count:
            raise IndexError(f"words {first}..{last} are not a run of this answer's {count} words (0..{count - 1})")
        one = self if image == 0 else self.for_image(image)
        return one.maps_at(size, [t for t, w in enumerate(self.word_index) if first <= w <= last]).max(axis=0)

    def find_words(self, text: str) -> tuple[int, int]:
        """(first, last): the first run of the answer's words that spells `text` (case and spaces ignored), e.g.
        "circle" or "red circle"; `UserError` when the answer has none."""
        from mllm_explain.errors import UserError

        target, words = "".join(text.split()).lower(), [word.lower() for word in self.words]
        for first in range(len(words) if target else 0):
            spelled = ""
            for last in range(first, len(words)):
                spelled += "".join(words[last].split())
                if spelled == target:
                    return first, last
                if not target.startswith(spelled):
                    break
        raise UserError(f"{text!r} is not in the answer; its words: {', '.join(map(repr, self.words))}")

    def __repr__(self) -> str:
        """One short line: method, answer (cut at 60 characters), grid, scales and the number of images."""
        answer = self.answer if len(self.answer) <= 60 else self.answer[:59] + "…"
        grid = "x".join(str(side) for side in self.grid_maps.shape[1:])
        images = f", images={len(self.images)}" if len(self.images) > 1 else ""
        scales = tuple(float(scale) for scale in self.scales)
        return f"Explanation(method={self.method!r}, answer={answer!r}, grid={grid}, scales={scales}{images})"

    def _repr_html_(self) -> str:
        """Jupyter's view: the report's word strip and map viewer in a sandboxed `<iframe srcdoc>` (data URIs, no
        files), so that its ids, styles and arrow keys stay its own (`mllm_explain.notebook.notebook_html`)."""
        from mllm_explain.notebook import notebook_html

        return notebook_html(self)

    def show(self, console=None) -> None:
        """In a notebook (a running IPython kernel), display the map viewer; elsewhere print a short summary with
        rich (method, answer with its ungrounded nouns flagged, grid, scales, each word's map peak) on `console`
        (default: a new `rich.console.Console` on stdout)."""
        from mllm_explain.notebook import show

        show(self, console)

    def plot(self, word: int | str, alpha: float = 0.5, cmap: str = "jet", ax=None, image: int = 0):
        """A matplotlib `Figure` of the map of `word` (its index, or its text: a word or a run of words such as
        "red circle") over image `image`, blended with `alpha`; drawn on `ax` if given (its figure is returned).
        No pyplot state is touched: in a script, `figure.savefig(path)`."""
        from mllm_explain.notebook import plot

        return plot(self, word, alpha=alpha, cmap=cmap, ax=ax, image=image)

    def to_dict(self) -> dict:
        """Everything but the arrays: tokens, words, candidates, context relevances, settings."""
        return {
            "model": self.model, "method": self.method, "options": self.options, "scales": list(self.scales),
            "prompt": self.prompt,
            "answer": self.answer, "words": self.words,
            "grid": list(self.grid_maps.shape[1:]), "image_box": list(self.image_box), "views": self.views,
            "image_size": [self.image.width, self.image.height],
            "images": [{"index": k, "size": [image.width, image.height], "grid": list(maps.shape[1:]),
                        **self.frames_of(k)}
                       for k, (image, maps) in enumerate(zip(self.images, self.image_grid_maps))],
            "context_tokens": self.context_tokens,
            "grounding_threshold": GROUNDING_THRESHOLD, "ungrounded_words": self.ungrounded_words,
            "tokens": [
                {"index": t, "text": text, "id": tid, "word_index": w,
                 "grounding": None if self.grounding is None else float(self.grounding[t]),
                 "candidates": [{"text": c, "probability": p} for c, p in cands],
                 "image_shares": [float(share) for share in shares],
                 "relevance": [None if np.isnan(r) else float(r) for r in self.relevance[t]]}
                for t, (text, tid, w, cands, shares) in enumerate(zip(self.tokens, self.token_ids, self.word_index,
                                                                      self.candidates, self.image_shares))
            ],
        }

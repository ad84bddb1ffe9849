"""How good token maps are: plausibility (TAM's Obj-IoU, Func-IoU, F1-IoU, precision, recall; DESIGN
§6) and faithfulness (deletion / insertion curves).  Metrics see maps, words and masks -- never the
method that made the maps -- so every method is scored by the same code.

Maps are scored as TAM scores them: scaled to 0-255 uint8 and binarised with Otsu's threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.evaluation.words import WordClass, classify_words

# Whether a larger value is better, per reported metric (cf. Quantus' score direction).
HIGHER_IS_BETTER: dict[str, bool] = {
    "obj_iou": True, "func_iou": True, "f1_iou": True, "precision": True, "recall": True,
    "insertion_auc": True, "deletion_auc": False, "seconds_per_caption": False, "peak_mem_mb": False,
}


def to_uint8(map_: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A [0, 1] map as 0-255 uint8 at `size` (H, W); bilinear resize only when the size differs."""
    values = np.asarray(map_, dtype=np.float32)
    if values.shape != tuple(size):
        values = cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return (np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def otsu(map_u8: np.ndarray) -> tuple[float, np.ndarray]:
    """Otsu's threshold of a uint8 map and the foreground (pixels above it).  OpenCV gives a
    constant map threshold 0: an all-zero map has no foreground, any other constant map is all
    foreground (TAM inherits the same)."""
    threshold, binary = cv2.threshold(map_u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(threshold), binary > 0


def overlap(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(IoU, precision, recall) of two boolean masks.  All NaN when `truth` is empty (nothing to
    find); precision is 0, not NaN, for an empty prediction (a map that marks nothing has failed)."""
    truth_area = int(truth.sum())
    if truth_area == 0:
        return math.nan, math.nan, math.nan
    hit = int((predicted & truth).sum())
    predicted_area = int(predicted.sum())
    union = truth_area + predicted_area - hit
    return hit / union, (hit / predicted_area if predicted_area else 0.0), hit / truth_area


@dataclass
class WordScore:
    """One caption word: its class, its noun threshold (max Otsu threshold over its tokens; nouns
    only) and its background fraction (share of map pixels below the caption's θ, mean over tokens)."""

    index: int
    word: str
    word_class: WordClass
    tokens: list[int]
    threshold: float = math.nan
    background: float = math.nan


@dataclass
class Mention:
    """Consecutive object words of one category, scored once with the best of their tokens.
    `token` is the token faithfulness reads: the first token of the mention's last (head) word."""

    words: list[int]
    category: int
    token: int
    iou: float = math.nan
    precision: float = math.nan
    recall: float = math.nan
    best_token: int | None = None

    @property
    def in_mask(self) -> bool:
        return not math.isnan(self.iou)


@dataclass
class CaptionScores:
    """Plausibility of one caption's maps.  `theta` is NaN when the caption has no noun."""

    words: list[WordScore]
    mentions: list[Mention]
    theta: float = math.nan

    @property
    def obj_iou(self) -> list[float]:
        """One IoU per object mention whose category is in the mask."""
        return [m.iou for m in self.mentions if m.in_mask]

    @property
    def precision(self) -> list[float]:
        return [m.precision for m in self.mentions if m.in_mask]

    @property
    def recall(self) -> list[float]:
        return [m.recall for m in self.mentions if m.in_mask]

    @property
    def func_iou(self) -> list[float]:
        """One background fraction per function word (none when the caption has no noun, as in TAM)."""
        return [w.background for w in self.words if w.word_class.kind == "function" and not math.isnan(w.background)]


def score_maps(maps: np.ndarray, word_index: Sequence[int], words: Sequence[str], mask: np.ndarray,
               categories: dict[str, int], classes: Sequence[WordClass] | None = None) -> CaptionScores:
    """TAM's plausibility of per-token maps (T, h, w) in [0, 1] against a category-id mask (H, W).

    Obj-IoU: each object word's tokens are Otsu-binarised at mask size and compared with its
    category's mask; the best token counts, and neighbouring words of one category are one mention.
    Func-IoU: θ = mean over the caption's nouns (object and other) of their Otsu thresholds; a
    function word scores the fraction of its map below θ.  Both read the maps at mask size (TAM
    reads Func-IoU on the token grid; upsampling barely moves the fraction).
    """
    size = mask.shape[:2]
    classes = list(classes) if classes is not None else classify_words(list(words), categories)
    members: dict[int, list[int]] = {}
    for t, w in enumerate(word_index):
        members.setdefault(w, []).append(t)
    maps_u8 = {t: to_uint8(maps[t], size) for t in range(len(word_index))}
    scored = [WordScore(i, word, cls, members.get(i, [])) for i, (word, cls) in enumerate(zip(words, classes))]
    foreground: dict[int, np.ndarray] = {}
    for word in scored:
        if word.word_class.is_noun and word.tokens:
            thresholds = []
            for t in word.tokens:
                threshold, foreground[t] = otsu(maps_u8[t])
                thresholds.append(threshold)
            word.threshold = max(thresholds)
    mentions = object_mentions(classes, word_index)
    for mention in mentions:
        truth = mask == mention.category
        for t in (t for w in mention.words for t in scored[w].tokens):
            iou, precision, recall = overlap(foreground[t], truth)
            if not math.isnan(iou) and (mention.best_token is None or iou > mention.iou):
                mention.iou, mention.precision, mention.recall, mention.best_token = iou, precision, recall, t
    noun_thresholds = [w.threshold for w in scored if w.word_class.is_noun and not math.isnan(w.threshold)]
    theta = float(np.mean(noun_thresholds)) if noun_thresholds else math.nan
    if not math.isnan(theta):
        for word in scored:
            if word.tokens:
                word.background = float(np.mean([(maps_u8[t] < theta).mean() for t in word.tokens]))
    return CaptionScores(scored, mentions, theta)


def object_mentions(classes: Sequence[WordClass], word_index: Sequence[int]) -> list[Mention]:
    """The caption's object mentions: neighbouring object words of one category are one mention,
    read at the first token of its last (head) word."""
    members: dict[int, list[int]] = {}
    for t, w in enumerate(word_index):
        members.setdefault(w, []).append(t)
    mentions: list[Mention] = []
    for index, cls in enumerate(classes):
        if cls.kind != "object" or index not in members:
            continue
        if mentions and mentions[-1].category == cls.category and mentions[-1].words[-1] == index - 1:
            mentions[-1].words.append(index)
            mentions[-1].token = members[index][0]
        else:
            mentions.append(Mention([index], cls.category, members[index][0]))
    return mentions


def f1_iou(obj_iou: float, func_iou: float) -> float:
    """F1-IoU: harmonic mean of the dataset-mean Obj-IoU and Func-IoU (NaN if either is NaN)."""
    if math.isnan(obj_iou) or math.isnan(func_iou):
        return math.nan
    total = obj_iou + func_iou
    return 2 * obj_iou * func_iou / total if total else 0.0


def mean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values; NaN (no warning) when there are none."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


# --- faithfulness ---------------------------------------------------------------------------------

@dataclass
class Curves:
    """Teacher-forced probability of one token as the top fraction of pixels (by the map) is
    blurred away (deletion) or revealed on a blurred image (insertion)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> float:
        return auc(self.fractions, self.deletion)

    @property
    def insertion_auc(self) -> float:
        return auc(self.fractions, self.insertion)


def auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Area under a curve on [0, 1] by the trapezoid rule."""
    fractions, values = np.asarray(fractions, dtype=np.float64), np.asarray(values, dtype=np.float64)
    return float(np.sum(np.diff(fractions) * (values[1:] + values[:-1]) / 2))


def random_saliency(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The random baseline's map: seeded uniform noise, i.e. pixels perturbed in a random order."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def blurred(image: np.ndarray, sigma_fraction: float = 0.25) -> np.ndarray:
    """A Gaussian-blurred copy, σ = `sigma_fraction` of the shorter side.  The blur must be strong:
    on the bundled model a σ of 5% kept an object's colour, and so its colour word's probability,
    even with the whole image blurred; at 25-30% the object's shape and colour are gone while the
    image stays in the model's domain (no black holes)."""
    sigma = max(1.0, sigma_fraction * min(image.shape[:2]))
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def pixel_ranks(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each pixel's position (0 = first perturbed) when sorted by decreasing saliency; ties are
    broken in a seeded random order, so a flat region is not perturbed in raster order."""
    flat = saliency.ravel()
    order = np.lexsort((np.random.default_rng(seed).random(flat.size), -flat))
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(saliency.shape)


def deletion_insertion(model: ModelAdapter, image: Image.Image, prompt: str, answer_ids: Sequence[int],
                       token_index: int, saliency: np.ndarray, steps: int = 8, *,
                       sigma_fraction: float = 0.25, seed: int = 0) -> Curves:
    """Deletion and insertion curves of answer token `token_index` under the map `saliency` (H, W),
    at pixel fractions 0, 1/steps, ..., 1.  Each curve's images go through one batched
    `answer_probabilities` call."""
    picture = np.asarray(image.convert("RGB"))
    height, width = picture.shape[:2]
    values = np.asarray(saliency, dtype=np.float32)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    soft = blurred(picture, sigma_fraction)
    ranks = pixel_ranks(values, seed)[..., None]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * height * width).astype(np.int64)
    deleted = [Image.fromarray(np.where(ranks < k, soft, picture)) for k in counts]
    inserted = [Image.fromarray(np.where(ranks < k, picture, soft)) for k in counts]
    deletion = model.answer_probabilities(deleted, prompt, answer_ids)[:, token_index]
    insertion = model.answer_probabilities(inserted, prompt, answer_ids)[:, token_index]
    return Curves(fractions, deletion.numpy().astype(np.float64), insertion.numpy().astype(np.float64))

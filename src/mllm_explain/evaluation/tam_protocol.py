"""TAM's plausibility protocol as its own evaluation code computes it (`evaluate --protocol tam`), so that
our numbers can be set beside published ones (xmed-lab/TAM, `eval.py` at commit 7c7df1d; DESIGN §6).

What differs from our default protocol (`metrics.score_maps`, `words.classify_words`), every item on
purpose and listed with its reason in docs/METHODS.md:
- words are TAM's: the caption is decoded *with* its end token, re-tokenised, and a token joins the
  previous word unless it starts with a space or '▁', is punctuation or CJK (so `.<|im_end|>` and
  `-shirt` are words);
- word classes are NLTK's perceptron tagger on each word alone (NN* nouns; CC DT EX MD POS PRP PRP$ UH
  WDT WP WP$ WRB function words) and a noun's category is the *last* one any of whose name words has
  the same WordNet lemma;
- maps are made uint8 on the token grid, then resized (OpenCV, bilinear) to the mask, and Func-IoU
  reads them on the grid;
- a mention whose category is absent from the mask still triggers the merge of the two mentions
  before it when its previous word has the same category (TAM's bug, kept);
- an empty foreground gives a NaN precision, and a caption whose re-tokenised words do not cover
  exactly its maps is dropped.

NLTK's data is never downloaded here: `TamLanguage` finds it on NLTK's search path (plus `nltk_data`)
or refuses in one line.
"""

from __future__ import annotations

import math
import pickle
import string
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from mllm_explain.errors import UserError

FUNCTION_TAGS = frozenset("CC DT EX MD POS PRP PRP$ UH WDT WP WP$ WRB".split())
NOUN_TAGS = frozenset("NN NNS NNP NNPS".split())
# Word labels below 1 (TAM's): a noun of no category, a function word, anything else.
OTHER_NOUN, FUNCTION, OTHER = -1, -2, -3
LABEL_KINDS = {OTHER_NOUN: "other_noun", FUNCTION: "function", OTHER: "other"}
DOWNLOAD = "python -m nltk.downloader averaged_perceptron_tagger wordnet"
_TAGGER_JSON = "taggers/averaged_perceptron_tagger_eng/"  # NLTK >= 3.9's own format
_TAGGER_PICKLE = "taggers/averaged_perceptron_tagger/averaged_perceptron_tagger.pickle"  # what TAM downloads


class _TaggerUnpickler(pickle.Unpickler):
    """The tagger's pickle holds dicts, floats, strings and one set: nothing else may be built from it."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("__builtin__", "set"), ("builtins", "set")):
            return set
        raise pickle.UnpicklingError(f"the tagger's pickle refers to {module}.{name}, not plain data")


class TamLanguage:
    """NLTK's averaged-perceptron tagger and WordNet's noun lemmatiser, as TAM's eval.py uses them.

    The data is looked up on NLTK's search path (`NLTK_DATA`, ~/nltk_data, ...) after `nltk_data`, which
    is added to that path.  The tagger is read in NLTK's JSON format or as the pickle TAM's code downloads
    (read as plain data only).  Missing data is a one-line `UserError` naming the download command."""

    def __init__(self, nltk_data: Path | None = None) -> None:
        try:
            import nltk.data
            from nltk.stem import WordNetLemmatizer
            from nltk.tag.perceptron import PerceptronTagger
        except ImportError:
            raise UserError("--protocol tam needs NLTK: pip install 'mllm-explain[tam]'") from None
        if nltk_data is not None:
            if not Path(nltk_data).is_dir():
                raise UserError(f"--nltk-data folder not found: {nltk_data}")
            if str(nltk_data) not in nltk.data.path:
                nltk.data.path.insert(0, str(nltk_data))
        self.tagger = PerceptronTagger(load=False)
        weights, tagdict, classes = self._tagger_data(nltk.data)
        self.tagger.model.weights, self.tagger.tagdict = weights, tagdict
        self.tagger.classes = self.tagger.model.classes = set(classes)
        self._find(nltk.data, "corpora/wordnet")
        self.lemmatizer = WordNetLemmatizer()  # NLTK's WordNet, found on the path as TAM's code finds it
        self.tag, self.lemma = cache(self._tag), cache(self._lemma)
        self.lemma("dogs")  # WordNet loads now, not at the first caption

    def _find(self, data, resource: str):
        try:
            return data.find(resource)
        except (LookupError, OSError):
            raise UserError(f"--protocol tam needs NLTK's {resource.split('/')[1]} data, not found on NLTK's path "
                            f"({', '.join(map(str, data.path[:3]))}, ...): run `{DOWNLOAD}`, or point --nltk-data "
                            "at a folder that holds taggers/ and corpora/wordnet") from None

    def _tagger_data(self, data) -> tuple[dict, dict, list]:
        try:
            folder = data.find(_TAGGER_JSON)
        except (LookupError, OSError):
            with self._find(data, _TAGGER_PICKLE).open() as handle:
                weights, tagdict, classes = _TaggerUnpickler(handle).load()
            return weights, tagdict, list(classes)
        import json

        parts = [json.loads(folder.join(f"averaged_perceptron_tagger_eng.{part}.json").open().read())
                 for part in ("weights", "tagdict", "classes")]
        return parts[0], parts[1], parts[2]

    def _tag(self, word: str) -> str:
        return self.tagger.tag([word])[0][1]

    def _lemma(self, word: str) -> str:
        """WordNet's noun lemma of the lower-cased word without hyphens (itself if none), as TAM matches words."""
        with warnings.catch_warnings():  # "multilingual functions are not available": not used here
            warnings.simplefilter("ignore", UserWarning)
            return self.lemmatizer.lemmatize(word.lower().replace("-", ""))

    def label(self, word: str, categories: dict[str, int]) -> int:
        """TAM's label of a caption word: the id of the *last* category any of whose name words shares its
        lemma when NLTK tags it a noun (`OTHER_NOUN` if none), else `FUNCTION` or `OTHER`."""
        tag = self.tag(word)
        if tag in FUNCTION_TAGS:
            return FUNCTION
        if tag not in NOUN_TAGS:
            return OTHER
        label = OTHER_NOUN
        for name, category in categories.items():
            if any(self.lemma(part) == self.lemma(word) for part in name.split()):
                label = category
        return label


@cache
def tam_language(nltk_data: Path | None = None) -> TamLanguage:
    """The one `TamLanguage` of a process for `nltk_data` (loading WordNet takes seconds)."""
    return TamLanguage(nltk_data)


def word_groups(tokenizer, ids: Sequence[int]) -> tuple[list[str], list[list[int]]]:
    """TAM's caption words and each one's token indices: the ids are decoded with their special tokens
    and re-tokenised; a token starts a word when it is the first, is punctuation (a substring of
    `string.punctuation`, the empty string included), holds a CJK character, or starts with a space or
    '▁'; otherwise it joins the previous word.  Spaces are removed from words."""
    tokens = tokenizer.tokenize(tokenizer.decode(list(ids)))
    words: list[str] = []
    groups: list[list[int]] = []
    for index, token in enumerate(tokens):
        text = tokenizer.decode(tokenizer.convert_tokens_to_ids(token))
        starts = (index == 0 or text in string.punctuation or any("CJK" in unicodedata.name(c, "") for c in text)
                  or text[0] == " " or token[0] == "▁")
        if starts:
            words.append(text.replace(" ", ""))
            groups.append([index])
        else:
            words[-1] += text.replace(" ", "")
            groups[-1].append(index)
    return words, groups


def grid_uint8(grid_maps: np.ndarray) -> np.ndarray:
    """Maps in [0, 1] on their token grid as TAM's code returns them: floor(map * 255) as uint8."""
    return (np.clip(np.asarray(grid_maps, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


@dataclass
class TamScores:
    """One caption under TAM's protocol: the per-word labels, tokens and noun thresholds, and the lists
    TAM's `evaluate` returns (Obj-IoU, precision and recall per kept mention; Func-IoU per function word).
    `dropped` says why TAM's code would drop the caption (None when scored)."""

    words: list[str]
    labels: list[int]
    groups: list[list[int]]
    obj_iou: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    func_iou: list[float] = field(default_factory=list)
    thresholds: dict[int, float] = field(default_factory=dict)  # word index -> its max Otsu threshold
    backgrounds: dict[int, float] = field(default_factory=dict)  # function word index -> its Func-IoU
    theta: float = math.nan
    dropped: str | None = None


def score_tam(maps_u8: np.ndarray, words: list[str], groups: list[list[int]], labels: list[int],
              mask: np.ndarray | None) -> TamScores:
    """TAM's Obj-IoU / Func-IoU lists of one caption from its uint8 grid maps (R, gh, gw), one per generated
    token (the end token's included), against a category-id mask (None: a missing mask, read as empty at
    the grid as TAM's code does).  Arithmetic follows TAM's so that results agree to rounding."""
    scores = TamScores(words, labels, groups)
    if not groups or groups[-1][-1] != len(maps_u8) - 1:
        scores.dropped = f"{sum(map(len, groups))} re-tokenised tokens for {len(maps_u8)} maps"
        return scores
    mask = np.zeros_like(maps_u8[0]) if mask is None else mask
    height, width = mask.shape[:2]
    binary: dict[int, tuple[float, np.ndarray]] = {}

    def otsu(token: int) -> tuple[float, np.ndarray]:
        if token not in binary:
            resized = cv2.resize(maps_u8[token], (width, height))
            binary[token] = cv2.threshold(resized, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return binary[token]

    noun_thresholds = []
    for index, (label, group) in enumerate(zip(labels, groups)):
        if label > 0:
            truth = (mask == label).astype(np.uint8)
            found = []  # (iou, precision, recall) per token, when the category is in the mask
            for token in group:
                _, predicted = otsu(token)
                if truth.sum() != 0:
                    hit = float((truth * predicted > 0).sum())
                    chosen = int((predicted > 0).sum())
                    found.append((hit / int(((truth + predicted / 255) > 0).sum()),
                                  hit / chosen if chosen else math.nan, hit / int((truth > 0).sum())))
            scores.thresholds[index] = max(otsu(token)[0] for token in group)
            noun_thresholds.append(scores.thresholds[index])
            if found:
                best = max(found, key=lambda item: item[0])  # the first of equal IoUs, as list.index finds it
                scores.obj_iou.append(best[0])
                scores.precision.append(best[1])
                scores.recall.append(best[2])
            if len(scores.obj_iou) > 1 and labels[index - 1] == label:  # TAM merges even when `found` is empty
                keep = -1 if scores.obj_iou[-1] > scores.obj_iou[-2] else -2
                for values in (scores.obj_iou, scores.precision, scores.recall):
                    values[-2] = values[keep]
                    del values[-1]
        elif label == OTHER_NOUN:
            scores.thresholds[index] = max(otsu(token)[0] for token in group)
            noun_thresholds.append(scores.thresholds[index])
    if noun_thresholds:
        scores.theta = sum(noun_thresholds) / len(noun_thresholds)
        for index, (label, group) in enumerate(zip(labels, groups)):
            if label == FUNCTION:
                fractions = [float((maps_u8[t] < scores.theta).sum()) / maps_u8[t].size for t in group]
                scores.backgrounds[index] = sum(fractions) / len(fractions)
                scores.func_iou.append(scores.backgrounds[index])
    return scores


def pooled_mean(values: Sequence[float | None]) -> float:
    """TAM's dataset mean: every value counts, so one NaN (an empty foreground's precision) makes it NaN;
    NaN when there is no value."""
    values = [math.nan if v is None else float(v) for v in values]
    return sum(values) / len(values) if values else math.nan

"""`Explanation`: the result of explaining one answer, token by token; it saves itself as arrays,
JSON and an interactive HTML report (rendering lives in `mllm_explain.report`)."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def word_starts(tokens: list[str]) -> list[int]:
    """Word index of every token: a token that starts with a space (or '▁'/'Ġ'), or is punctuation,
    starts a new word (DESIGN §6)."""
    index, result = -1, []
    for i, text in enumerate(tokens):
        stripped = text.strip()
        starts = (i == 0 or text[:1] in (" ", "▁", "Ġ", "\n") or (stripped and all(c in string.punctuation for c in stripped))
                  or (result and tokens[i - 1].strip() and all(c in string.punctuation for c in tokens[i - 1].strip())))
        index += bool(starts)
        result.append(index)
    return result


@dataclass
class Explanation:
    """Per answer token t: `grid_maps[t]` (gh, gw) and `image_maps[t]` (H, W) in [0, 1],
    `relevance[t, j]` for context token j (prompt tokens, then answer tokens; NaN where j is not
    before t), and the top next-token `candidates[t]` as (text, probability)."""

    method: str
    options: dict
    prompt: str
    image: Image.Image
    tokens: list[str]
    token_ids: list[int]
    grid_maps: np.ndarray
    image_maps: np.ndarray
    context_tokens: list[str]
    relevance: np.ndarray
    candidates: list[list[tuple[str, float]]]
    model: str = ""
    word_index: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.word_index:
            self.word_index = word_starts(self.tokens)

    @property
    def answer(self) -> str:
        return "".join(self.tokens).strip()

    @property
    def words(self) -> list[str]:
        """The answer's words, each the concatenation of its tokens."""
        words = [""] * (max(self.word_index, default=-1) + 1)
        for text, w in zip(self.tokens, self.word_index):
            words[w] += text
        return [w.strip() for w in words]

    def word_map(self, word: int) -> np.ndarray:
        """A word's image-resolution map: the element-wise max over its tokens' maps."""
        members = [t for t, w in enumerate(self.word_index) if w == word]
        return self.image_maps[members].max(axis=0)

    def to_dict(self) -> dict:
        """Everything but the arrays: tokens, words, candidates, context relevances, settings."""
        return {
            "model": self.model, "method": self.method, "options": self.options, "prompt": self.prompt,
            "answer": self.answer, "words": self.words,
            "grid": list(self.grid_maps.shape[1:]), "image_size": [self.image.width, self.image.height],
            "context_tokens": self.context_tokens,
            "tokens": [
                {"index": t, "text": text, "id": tid, "word_index": w,
                 "candidates": [{"text": c, "probability": p} for c, p in cands],
                 "relevance": [None if np.isnan(r) else float(r) for r in self.relevance[t]]}
                for t, (text, tid, w, cands) in enumerate(zip(self.tokens, self.token_ids, self.word_index, self.candidates))
            ],
        }

    def save_npz(self, path: Path) -> None:
        """One image-resolution map per answer token, keyed by token index ('0', '1', ...), plus grids."""
        arrays = {str(t): m.astype(np.float32) for t, m in enumerate(self.image_maps)}
        np.savez_compressed(path, **arrays, grid_maps=self.grid_maps.astype(np.float32),
                            relevance=self.relevance.astype(np.float32))

    def save_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    def save(self, out: Path) -> Path:
        """Write report.html, maps.npz, tokens.json and words/NN_word.png under `out`; return the report path."""
        from mllm_explain.report import write_report

        out.mkdir(parents=True, exist_ok=True)
        self.save_npz(out / "maps.npz")
        self.save_json(out / "tokens.json")
        return write_report(self, out)

"""The report of an `Explanation`: one self-contained interactive report.html plus one overlay PNG per
answer word under words/ (for slides and papers, where the HTML cannot go)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mllm_explain.report.html import render_html
from mllm_explain.report.images import overlay, safe_name

if TYPE_CHECKING:
    from mllm_explain.explanation import Explanation

__all__ = ["write_report", "write_word_images"]


def write_word_images(explanation: Explanation, words_dir: Path) -> list[Path]:
    """Write words/NNN_<word>.png, each word's map blended 50/50 over the image; PNGs left over from an
    earlier report in the same folder are removed first so the folder matches this answer."""
    words_dir.mkdir(parents=True, exist_ok=True)
    for stale in words_dir.glob("[0-9][0-9][0-9]_*.png"):
        stale.unlink()
    paths = []
    for index, word in enumerate(explanation.words):
        path = words_dir / f"{index:03d}_{safe_name(word)}.png"
        overlay(explanation.image, explanation.word_map(index)).save(path)
        paths.append(path)
    return paths


def write_report(explanation: Explanation, out: Path) -> Path:
    """Write `out/report.html` and `out/words/*.png`; return the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_word_images(explanation, out / "words")
    report = out / "report.html"
    report.write_text(render_html(explanation), encoding="utf-8")
    return report

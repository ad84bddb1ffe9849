"""Explanations where people look at them: in a Jupyter notebook (`Explanation._repr_html_`, `show`), in a
terminal (`show`'s summary), and in matplotlib (`plot`, `compare`).

Nothing here imports IPython: a running kernel has already imported it, so `in_notebook` only looks in
`sys.modules`.  matplotlib is imported when a figure is drawn, and every figure is a bare
`matplotlib.figure.Figure`, so pyplot's list of open figures never grows."""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mllm_explain.errors import UserError
from mllm_explain.grounding import THRESHOLD as GROUNDING_THRESHOLD

if TYPE_CHECKING:  # annotations only: Explanation's notebook methods import this module (no cycle)
    from PIL import Image

    from mllm_explain.explanation import Explanation

__all__ = ["compare", "in_notebook", "notebook_html", "plot", "show", "summary"]

PEAK_SIDE = 256  # longest side the summary finds each word's peak at: the maps' detail is the grid's anyway
FRAME_EXTRA = 220  # iframe height beyond the tallest panel: title, captions, the folded settings, margins
FILMSTRIP_WORDS = 320  # and beyond a filmstrip, the words and candidates below it


def notebook_html(explanation: Explanation, height: int | None = None) -> str:
    """The report page (`report.html.render_html`: word strip, map viewer, folded settings) in a sandboxed
    `<iframe srcdoc>` of fixed `height` pixels (default: the tallest image panel plus its captions; the page
    scrolls within it where it needs more, and the frame's corner resizes it).

    An iframe rather than a fragment of the notebook's page: the report's ids (#heatmap, #candidates, ...), its
    element-wide CSS (body, h1, figure) and its document-wide arrow-key handler would otherwise clash with the
    notebook's and with a second explanation's; inside its own document each stays its own, arrow keys only act
    while the viewer has focus, and the page needs no change.  `sandbox="allow-scripts"` lets the page's script
    run without access to the notebook (its origin is opaque)."""
    from mllm_explain.report.html import panel_side, render_html
    from mllm_explain.report.images import embed_size

    if height is None:
        side = panel_side(len(explanation.images))
        tallest = max(embed_size(image.width, image.height, side, enlarge=True)[1] for image in explanation.images)
        # a filmstrip (more than two panels) is as wide as a cell: the words wrap below it
        height = tallest + FRAME_EXTRA + (FILMSTRIP_WORDS if len(explanation.images) > 2 else 0)
    page = html.escape(render_html(explanation), quote=True)
    title = html.escape(f"mllm-explain: {explanation.answer}", quote=True)
    return (f'<iframe class="mllm-explain" srcdoc="{page}" title="{title}" sandbox="allow-scripts" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #ddd;resize:vertical;overflow:auto">'
            f"</iframe>")


def in_notebook() -> bool:
    """Whether this process runs an IPython kernel (Jupyter, VS Code, Colab), without importing IPython."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(explanation: Explanation, console=None) -> None:
    """Display the viewer in a notebook; print `summary` elsewhere (on `console`, default stdout)."""
    if console is None and in_notebook():
        from IPython.display import display  # a kernel is running, so IPython is there

        display(explanation)
        return
    if console is None:
        from rich.console import Console

        console = Console()
    for renderable in summary(explanation):
        console.print(renderable)


def _region(x: float, y: float) -> str:
    """Where (x, y) in [0, 1] lies in the image, in words: "top left", "centre", "bottom"."""
    row = ("top", "", "bottom")[min(2, int(3 * y))]
    column = ("left", "", "right")[min(2, int(3 * x))]
    return " ".join(part for part in (row, column) if part) or "centre"


def peaks(explanation: Explanation) -> list[dict]:
    """Per word: the image its map draws on most (its tokens' mean share), where that image's map of the word peaks
    (x, y in the image's pixels, and in words) and the peak's value."""
    from mllm_explain.report.images import embed_size

    shares = explanation.image_shares
    rows = []
    for index, word in enumerate(explanation.words):
        tokens = [t for t, w in enumerate(explanation.word_index) if w == index]
        k = int(np.argmax(shares[tokens].mean(axis=0)))
        image = explanation.images[k]
        width, height = embed_size(image.width, image.height, PEAK_SIDE)
        heat = explanation.phrase_map(index, index, (height, width), image=k)
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        fx, fy = (x + 0.5) / width, (y + 0.5) / height
        rows.append({"word": word, "image": k, "share": float(shares[tokens, k].mean()), "value": float(heat[y, x]),
                     "x": int(fx * image.width), "y": int(fy * image.height), "region": _region(fx, fy)})
    return rows


def summary(explanation: Explanation) -> list:
    """rich renderables for a terminal: a header (method, model, grid, scales, images), the answer with its
    ungrounded nouns flagged, and a table of each word's map peak."""
    from rich.table import Table
    from rich.text import Text

    e = explanation
    grid = "x".join(str(side) for side in e.grid_maps.shape[1:])
    header = Text.assemble(("mllm-explain ", "bold"), (e.method, "bold cyan"),
                           f"  model {_short(e.model) or '(unknown)'}  grid {grid}  scales "
                           f"{', '.join(f'{scale:g}' for scale in e.scales)}",
                           f"  images {len(e.images)}" if len(e.images) > 1 else "")
    flagged = set(e.ungrounded_words)
    answer = Text("answer: ", style="bold")
    for index, word in enumerate(e.words):
        first = next(t for t, w in enumerate(e.word_index) if w == index)
        answer.append(" " if first and e.tokens[first][:1].isspace() else "")
        marked = index in flagged
        answer.append(word + ("(?)" if marked else ""), style="bold red underline" if marked else "")
    lines = [header, answer]
    if flagged:
        lines.append(Text(f"(?) a noun the image may not show (grounding below {GROUNDING_THRESHOLD})", style="red"))
    several, scored = len(e.images) > 1, e.grounding is not None
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("#", "word", *(("image",) if several else ()), "peak (x, y)", "where", "value",
                 *(("grounding",) if scored else ())):
        table.add_column(name, justify="right" if name in ("#", "value", "grounding") else "left")
    for index, (row, score) in enumerate(zip(peaks(e), e.word_grounding)):
        table.add_row(str(index), Text(row["word"], style="bold red" if index in flagged else ""),
                      *((f"{row['image'] + 1} ({100 * row['share']:.0f}%)",) if several else ()),
                      f"({row['x']}, {row['y']})", row["region"], f"{row['value']:.2f}",
                      *((f"{score:.2f}",) if scored else ()))
    return [*lines, table]


def _short(model: str) -> str:
    """A model's name: a local checkpoint's folder name rather than its whole path."""
    return Path(model).name if model.startswith(("/", "./", "../", "~")) else model


def _words(explanation: Explanation, word: int | str) -> tuple[int, int, str]:
    """(first, last, label) of `word`: a word index or the text of one word or a run of words."""
    if isinstance(word, str):
        first, last = explanation.find_words(word)
    else:
        count = len(explanation.words)
        if not -count <= int(word) < count:
            raise UserError(f"word {word} is not in the answer, which has {count} words")
        first = last = int(word) % count
    return first, last, " ".join(explanation.words[first:last + 1])


def _image(explanation: Explanation, image: int) -> Image.Image:
    """Image `image` of the explanation (negative counts from the end); `UserError` when it has no such image."""
    if not -len(explanation.images) <= image < len(explanation.images):
        raise UserError(f"image {image} is not one of this explanation's {len(explanation.images)}")
    return explanation.images[image]


def plot(explanation: Explanation, word: int | str, alpha: float = 0.5, cmap: str = "jet", ax=None, image: int = 0):
    """A matplotlib `Figure` of the map of `word` (index or text) over image `image`, the map blended with `alpha`
    in colour map `cmap`; drawn on `ax` when given (and its figure returned)."""
    first, last, label = _words(explanation, word)
    return _draw(explanation, first, last, label, alpha, cmap, ax, image)


def _draw(explanation: Explanation, first: int, last: int, label: str, alpha: float, cmap: str, ax, image: int):
    """`plot` of the words `first`..`last`, titled `label`."""
    from matplotlib.figure import Figure

    picture = _image(explanation, image).convert("RGB")
    heat = explanation.phrase_map(first, last, image=image)
    if ax is None:
        figure = Figure(figsize=(6.0, 6.0 * picture.height / max(picture.width, 1)), layout="constrained")
        ax = figure.add_subplot()
    ax.imshow(np.asarray(picture))
    ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    suffix = f" (image {image % len(explanation.images) + 1})" if len(explanation.images) > 1 else ""
    ax.set_title(f"{label!r}{suffix}")
    return ax.figure


def compare(explanations: Mapping[str, Explanation], word: int | str, alpha: float = 0.5, cmap: str = "jet",
            image: int = 0):
    """The maps of one `word` (index or text) by several methods side by side, one axis per method titled by its
    name (the mapping's keys), as one matplotlib `Figure`.  The explanations must be of one answer."""
    from matplotlib.figure import Figure

    if not explanations:
        raise UserError("compare needs at least one explanation")
    names = list(explanations)
    reference = explanations[names[0]]
    for name in names[1:]:
        if explanations[name].words != reference.words:
            raise UserError(f"compare needs explanations of one answer: {names[0]!r} explains {reference.answer!r}, "
                            f"{name!r} explains {explanations[name].answer!r}")
    first, last, label = _words(reference, word)
    picture = _image(reference, image)
    width = 4.0 * len(names)
    figure = Figure(figsize=(width, 4.0 * picture.height / max(picture.width, 1) + 0.6), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        _draw(explanations[name], first, last, label, alpha, cmap, ax, image)
        ax.set_title(name)
    figure.suptitle(repr(label))
    return figure

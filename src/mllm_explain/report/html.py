"""report.html: one offline file (inline CSS/JS, images as data URIs) rendered with jinja2.

Untrusted text (prompt, tokens, candidates, options) reaches the page only through autoescaped
template fields or the `tojson` data block, which the page's script reads with JSON.parse."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from jinja2 import Environment, PackageLoader

from mllm_explain.grounding import THRESHOLD as GROUNDING_THRESHOLD
from mllm_explain.report.images import MAX_EMBED_SIDE, data_uri, display_image, embed_size, heat_image

if TYPE_CHECKING:  # annotations only: Explanation's notebook view renders through the report (no cycle)
    from mllm_explain.explanation import Explanation

FILMSTRIP_SIDE = 192  # longest side of each frame of a filmstrip (more than two panels), on the page and stored

_ENV = Environment(loader=PackageLoader("mllm_explain", "report/templates"), autoescape=True)
_ENV.policies["json.dumps_kwargs"] = {"allow_nan": False}  # NaN is not JSON: fail here, not in the browser


def _finite(value: float) -> float | None:
    """`value` as a float, or None for NaN/inf/None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _tints(row: np.ndarray) -> list[float | None]:
    """Context relevances scaled to [0, 1] by the row's largest positive one; None where j is no context."""
    values = [_finite(r) for r in row]
    top = max((v for v in values if v is not None and v > 0), default=0.0)
    return [None if v is None else (max(v, 0.0) / top if top else 0.0) for v in values]


def page_data(explanation: Explanation) -> dict:
    """What the page's script needs per answer token: its heat map over each image (data URIs), its share of map
    mass on each image, candidates, context tints."""
    per_image, side = [], panel_side(len(explanation.images))
    for index in range(len(explanation.images)):
        one = explanation.for_image(index)
        size = embed_size(one.image.width, one.image.height, side)
        per_image.append((one.maps_at((size[1], size[0])), size))  # drawn at the embedded size, never the image's
    relevance = np.asarray(explanation.relevance, dtype=np.float64)
    shares = explanation.image_shares
    tokens = []
    for t, text in enumerate(explanation.tokens):
        heatmaps = [data_uri(heat_image(maps[t], size)) for maps, size in per_image]
        tokens.append({
            "text": text,
            "heatmaps": heatmaps,
            "shares": [round(100.0 * float(share), 1) for share in shares[t]],
            "candidates": [{"text": c, "percent": round(100.0 * (_finite(p) or 0.0), 1)}
                           for c, p in explanation.candidates[t]],
            "relevance": [_finite(r) for r in relevance[t]],
            "tint": _tints(relevance[t]),
        })
    return {"tokens": tokens}


def view_rows(explanation: Explanation) -> list[dict]:
    """Each view of the (one) image with a label, its image box as text and as CSS percentages (for its outline on
    the image)."""
    rows, counts = [], {}
    for view in explanation.views:
        counts[view["kind"]] = counts.get(view["kind"], 0) + 1
        top, left, bottom, right = view["image_box"]
        rows.append({**view, "label": f"{view['kind']} {counts[view['kind']]}",
                     "box": ", ".join(f"{value:.3f}" for value in view["image_box"]),
                     "top": round(100 * top, 3), "left": round(100 * left, 3),
                     "height": round(100 * (bottom - top), 3), "width": round(100 * (right - left), 3)})
    return rows


def render_html(explanation: Explanation) -> str:
    """The whole report page as a string."""
    prompt_count = max(0, len(explanation.context_tokens) - len(explanation.tokens))
    flagged = set(explanation.ungrounded_words)
    grounding = explanation.grounding
    side = panel_side(len(explanation.images))
    panels = [{**image_panel(explanation.for_image(index), side), "label": panel_label(explanation, index)}
              for index in range(len(explanation.images))]
    return _ENV.get_template("report.html.j2").render(
        title=f"mllm-explain: {explanation.answer}" if explanation.answer else "mllm-explain",
        model=explanation.model,
        method=explanation.method,
        options=explanation.options,
        prompt=explanation.prompt,
        prompt_tokens=explanation.context_tokens[:prompt_count],
        prompt_count=prompt_count,
        tokens=explanation.tokens,
        ungrounded=[explanation.word_index[t] in flagged for t in range(len(explanation.tokens))],
        grounding=[None] * len(explanation.tokens) if grounding is None else [_finite(g) for g in grounding],
        threshold=GROUNDING_THRESHOLD,
        panels=panels,
        data=page_data(explanation),
        composition=f"compose={explanation.options.get('compose', 'tiles')}, see docs/METHODS.md",
    )


def panel_label(explanation: Explanation, index: int) -> str:
    """What a panel shows: "Image 2", or a video's "Frames 3-4 (1.0-1.5 s)"."""
    frames = explanation.frames_of(index)
    if not frames:
        return f"Image {index + 1}"
    (first, last), (start, end) = frames["frames"], frames["times"]
    span = f"Frame {first + 1}" if first == last else f"Frames {first + 1}-{last + 1}"
    return f"{span} ({start:.1f}-{end:.1f} s)"


def panel_side(panels: int) -> int:
    """Longest side of each image and heat map on the page: a filmstrip's frames (more than two panels) are small, so
    that the page stays a few MB for a long video."""
    return MAX_EMBED_SIDE if panels <= 2 else FILMSTRIP_SIDE


def image_panel(explanation: Explanation, side: int = MAX_EMBED_SIDE) -> dict:
    """What the page shows of one image (`Explanation.for_image`): the image, its display size (longest side
    `side`), its views and the tiles to outline."""
    image = explanation.image
    views = view_rows(explanation)
    return {"uri": data_uri(display_image(image, side)),
            "display_size": embed_size(image.width, image.height, side, enlarge=True),
            "views": views, "tiles": [view for view in views if view["kind"] == "tile"] if len(views) > 1 else []}

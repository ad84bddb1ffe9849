"""`explain(model, image, prompt)`: the one call from inputs to an `Explanation`.

inputs -> traces (one teacher-forced forward per scale) -> method maps per view of the vision tokens,
composed into one map over the image (resampled to the image's pixels on demand by the `Explanation`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError
from mllm_explain.explanation import Explanation
from mllm_explain.grounding import grounding_scores
from mllm_explain.images import as_rgb, load_image
from mllm_explain.methods import get_method


def explain(
    model: ModelAdapter,
    image: Image.Image | str | Path,
    prompt: str,
    answer: str | None = None,
    method: str = "msea_arc",
    *,
    max_new_tokens: int = 64,
    n_candidates: int = 5,
    grounding: bool = True,
    progress: Callable[[str], None] | None = None,
    notice: Callable[[str], None] | None = None,
    **options,
) -> Explanation:
    """Explain every token of `answer` (greedy generation when None) with `method`.

    Options are the method's keyword settings (e.g. `scales=(1.0, 0.5)`, `arc_k=50`, `filter=False`);
    see `mllm_explain.methods`.  `grounding` adds each token's grounding score (`mllm_explain.grounding`;
    one more forward when the image can be seen in more detail).  `progress` is called with a short
    label before each stage.  A scale the model cannot take for this image (e.g. 0.75 of an image the
    processor already sizes near its smallest input) is skipped and the others explain it; `notice`
    (default: `warnings.warn`) gets one line saying so, and `Explanation.scales` the scales used.  A
    UserError when none is left.
    """
    step = progress or (lambda _label: None)
    explainer = get_method(method, **options)
    picture = as_rgb(image) if isinstance(image, Image.Image) else load_image(image)
    if not prompt or not prompt.strip():
        raise UserError("the prompt is empty")
    if answer is None:
        step("generating")
        answer_ids = model.generate(picture, prompt, max_new_tokens=max_new_tokens)
    else:
        answer_ids = model.tokenize_answer(answer)
    traces = []
    for scale in usable_scales(model, picture, explainer.scales, notice or _warn):
        step(f"forward at scale {scale}")
        traces.append(model.trace(picture, prompt, answer_ids, scale=scale, attention=explainer.needs_attention,
                                  gradients=explainer.needs_gradients))
    step(f"{explainer.name} maps")
    result = explainer.attribute(model, traces)
    reference = traces[0]
    probabilities = torch.softmax(model.logits(reference.hidden[reference.answer_positions - 1]), -1)  # (T, V)
    scores = None
    if grounding:
        step("grounding scores")
        known = {reference.scale: probabilities.gather(1, reference.answer_ids[:, None])[:, 0].numpy()}
        scores = grounding_scores(model, picture, prompt, answer_ids, known)
    return Explanation(
        method=explainer.name, options=explainer.options(), prompt=prompt, image=picture,
        tokens=model.token_texts(answer_ids), token_ids=list(answer_ids),
        grid_maps=result.maps.float().numpy(), image_box=result.image_box,
        context_tokens=model.token_texts(reference.input_ids[reference.context_positions].tolist()),
        relevance=result.relevance.float().numpy(),
        candidates=_candidates(model, probabilities, n_candidates), model=model.name_or_path, grounding=scores,
        scales=tuple(trace.scale for trace in traces), views=[view.describe() for view in reference.views],
        view_maps=None if result.view_maps is None else [maps.float().numpy() for maps in result.view_maps],
    )


def usable_scales(model: ModelAdapter, image: Image.Image, scales: tuple[float, ...],
                  notice: Callable[[str], None]) -> list[float]:
    """The `scales` the model can take for `image`, in order; each one it cannot take is named to
    `notice`; a UserError when none is left."""
    usable, refused = [], {}
    for scale in scales:
        try:
            model.check_scale(image, scale)
        except UserError as exc:
            refused[scale] = str(exc)
        else:
            usable.append(scale)
    size = f"{image.width}x{image.height}"
    if not usable:
        raise UserError(f"none of the scales {', '.join(map(str, scales))} can be used for this {size} image: "
                        f"{next(iter(refused.values()))}")
    for scale, reason in refused.items():
        notice(f"scale {scale} skipped for this {size} image: {reason}")
    return usable


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _candidates(model: ModelAdapter, probabilities: torch.Tensor, n: int) -> list[list[tuple[str, float]]]:
    """Top-n next-token predictions (text, probability) from (T, V) next-token `probabilities`."""
    top = probabilities.topk(n, dim=-1)
    return [[(model.token_text(int(i)), float(p)) for i, p in zip(ids, probs)]
            for ids, probs in zip(top.indices, top.values)]


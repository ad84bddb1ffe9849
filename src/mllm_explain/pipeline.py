"""`explain(model, image, prompt)`: the one call from inputs to an `Explanation`; `explain_many` for several
methods sharing their forwards.

inputs -> traces (one teacher-forced forward per scale) -> method maps per view of the vision tokens,
composed into one map over the image (resampled to the image's pixels on demand by the `Explanation`).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mllm_explain.adapters.base import Media, ModelAdapter, Trace, as_images
from mllm_explain.errors import UserError
from mllm_explain.explanation import Explanation
from mllm_explain.grounding import detail_scale, grounding_scores
from mllm_explain.images import as_rgb, load_image
from mllm_explain.methods import get_method
from mllm_explain.methods.base import ExplanationMethod
from mllm_explain.methods.registry import options_for
from mllm_explain.video import Video


class SharedTraces:
    """The traces of one (images, prompt, answer), shared by every method that reads them.

    One forward per distinct input -- the scale, and whether the last layer's attention is kept (its eager
    kernel rounds differently) -- made when a method first asks for it; a method that needs gradients gets
    the plain trace with the model's inputs attached.  When the answer was generated, the scale-1 trace is the
    generation's own states (`ModelAdapter.generate_trace`): no forward at all.  `seconds[key]` is what each
    forward took (0 for the generation's) and `readers[key]` how many methods read it (`plan`), so a method's
    share of the forwards can be reported apart from its own work.
    """

    def __init__(self, model: ModelAdapter, media: Media, prompt: str, answer_ids: Sequence[int],
                 generated: Trace | None = None) -> None:
        self.model, self.prompt, self.answer_ids = model, prompt, list(answer_ids)
        self.media = media if isinstance(media, Video) else as_images(media)  # what the prompt shows
        self.traces: dict[tuple[float, bool], Trace] = {}
        self.seconds: dict[tuple[float, bool], float] = {}
        self.readers: Counter[tuple[float, bool]] = Counter()
        if generated is not None:
            self.traces[(1.0, False)], self.seconds[(1.0, False)] = generated, 0.0

    @classmethod
    def prepare(cls, model: ModelAdapter, media: Media, prompt: str, answer: str | None,
                max_new_tokens: int = 64, gradients: bool = False,
                progress: Callable[[str], None] | None = None) -> SharedTraces:
        """Traces for `answer`, or for the greedy answer (generated here, its states kept as the scale-1 trace)."""
        if not prompt or not prompt.strip():
            raise UserError("the prompt is empty")
        if isinstance(media, Video):
            model.check_video()
        else:
            model.check_images(len(as_images(media)))
        if answer is not None:
            return cls(model, media, prompt, model.tokenize_answer(answer))
        (progress or (lambda _label: None))("generating")
        answer_ids, generated = model.generate_trace(media, prompt, max_new_tokens=max_new_tokens,
                                                     gradients=gradients)
        if not answer_ids:
            raise UserError("nothing to explain: the answer is empty")
        return cls(model, media, prompt, answer_ids, generated)

    def keys(self, method: ExplanationMethod, scales: Sequence[float]) -> list[tuple[float, bool]]:
        return [(scale, method.needs_attention) for scale in scales]

    def plan(self, method: ExplanationMethod, scales: Sequence[float]) -> None:
        """Count `method` as a reader of its traces at `scales` (for `share`)."""
        self.readers.update(self.keys(method, scales))

    def share(self, method: ExplanationMethod, scales: Sequence[float]) -> float:
        """Seconds of the forwards `method` read at `scales`, each divided among its planned readers."""
        return sum(self.seconds.get(key, 0.0) / max(1, self.readers[key]) for key in self.keys(method, scales))

    def get(self, scale: float, attention: bool = False, gradients: bool = False) -> Trace:
        key = (scale, attention)
        trace = self.traces.get(key)
        if trace is None:
            started = time.perf_counter()
            trace = self.model.trace(self.media, self.prompt, self.answer_ids, scale=scale, attention=attention,
                                     gradients=gradients)
            self.traces[key], self.seconds[key] = trace, time.perf_counter() - started
        elif gradients and trace.inputs is None:
            scaled, _ = self.model.scaled_images(self.media, scale)
            trace.inputs = self.model.encode([scaled], self.prompt, self.answer_ids, scale)
        return trace


ImageInput = Image.Image | str | Path  # an image, or the path of its file


VideoInput = Video | str | Path | Sequence[Image.Image]  # a sampled clip, a video file, or the frames of one


def read_media(model: ModelAdapter, image: ImageInput | Sequence[ImageInput] | None = None,
               video: VideoInput | None = None, fps: float | None = None, frames: int | None = None) -> Media:
    """What one prompt shows, read: its images as RGB (an image or path alone, or a list or tuple of them), or its
    video (a file sampled as the model's video processor samples it, `fps` frames a second or `frames` frames; or
    frames given as images, `fps` a second)."""
    if (image is None) == (video is None):
        raise UserError("give images or a video, not both" if video is not None else "no image or video given")
    if video is None:
        items = [image] if isinstance(image, (Image.Image, str, Path)) else list(image)
        if not items:
            raise UserError("no image given")
        if fps is not None or frames is not None:
            raise UserError("fps and frames sample a video, not images")
        return [as_rgb(item) if isinstance(item, Image.Image) else load_image(item) for item in items]
    if isinstance(video, (str, Path)):
        return model.sample_video(video, fps=fps, frames=frames)
    if frames is not None:
        raise UserError("frames samples a video file; the frames given are all read")
    return video if isinstance(video, Video) else Video.from_frames(list(video), fps or 1.0)


def explain(
    model: ModelAdapter,
    image: ImageInput | Sequence[ImageInput] | None = None,
    prompt: str = "",
    answer: str | None = None,
    method: str = "msea_arc",
    *,
    video: VideoInput | None = None,
    fps: float | None = None,
    frames: int | None = None,
    max_new_tokens: int = 64,
    n_candidates: int = 5,
    grounding: bool = True,
    progress: Callable[[str], None] | None = None,
    notice: Callable[[str], None] | None = None,
    traces: SharedTraces | None = None,
    **options,
) -> Explanation:
    """Explain every token of `answer` (greedy generation when None) with `method`, about `image`: one image (or its
    path), or a list of them for a prompt with several images (where the model's family takes them); or about a
    `video` instead (`read_media`: a file sampled by the model's video processor, `fps` or `frames` setting how), one
    map per group of frames the model merges, at scale 1 only.

    Options are the method's keyword settings (e.g. `scales=(1.0, 0.5)`, `arc_k=50`, `filter=False`);
    see `mllm_explain.methods`.  `grounding` adds each token's grounding score (`mllm_explain.grounding`;
    one more forward when the image can be seen in more detail).  `progress` is called with a short
    label before each stage.  A scale the model cannot take for this image (e.g. 0.75 of an image the
    processor already sizes near its smallest input) is skipped and the others explain it; `notice`
    (default: `warnings.warn`) gets one line saying so, and `Explanation.scales` the scales used.  A
    UserError when none is left.

    A generated answer's scale-1 trace is the generation's own states, not a second forward (methods that
    read attention rows still run their own pass).  `traces` (`SharedTraces.prepare` of this image and
    prompt; `answer` is then not given) shares forwards with other calls: see `explain_many`.
    """
    step = progress or (lambda _label: None)
    explainer = get_method(method, **options)
    if traces is None:
        if video is not None:
            step("reading video")
        traces = SharedTraces.prepare(model, read_media(model, image, video, fps, frames), prompt, answer,
                                      max_new_tokens, explainer.needs_gradients, step)
    elif answer is not None:
        raise ValueError("give the answer to SharedTraces.prepare, not with `traces`")
    media, prompt, answer_ids = traces.media, traces.prompt, traces.answer_ids
    scales = usable_scales(model, media, explainer.scales, notice or _warn)
    per_scale = []
    for scale in scales:
        own = " (attention rows need their own pass)" if explainer.needs_attention else ""
        made = (scale, explainer.needs_attention) in traces.traces
        step(f"scale {scale}: the trace already made" if made else f"forward at scale {scale}{own}")
        per_scale.append(traces.get(scale, explainer.needs_attention, explainer.needs_gradients))
    step(f"{explainer.name} maps")
    result = explainer.attribute(model, per_scale)
    reference = per_scale[0]
    probabilities = torch.softmax(model.logits(reference.hidden[reference.answer_positions - 1]), -1)  # (T, V)
    scores = None
    if grounding:  # from the traces, shared: a scale MSEA ran is not run again, and MSEA reuses the detail view's
        step("grounding scores")
        known = {reference.scale: probabilities.gather(1, reference.answer_ids[:, None])[:, 0].numpy()}
        for scale in {1.0, detail_scale(model, media)} - set(known):
            known[scale] = answer_token_probabilities(model, traces.get(scale))
        scores = grounding_scores(model, media, prompt, answer_ids, known)
    return Explanation(
        method=explainer.name, options=explainer.options(), prompt=prompt, images=shown_images(media, reference),
        tokens=model.token_texts(answer_ids), token_ids=list(answer_ids),
        image_grid_maps=[maps.float().numpy() for maps in result.image_maps], image_box=result.image_box,
        context_tokens=model.token_texts(reference.input_ids[reference.context_positions].tolist()),
        relevance=result.relevance.float().numpy(),
        candidates=_candidates(model, probabilities, n_candidates), model=model.name_or_path, grounding=scores,
        scales=tuple(trace.scale for trace in per_scale),
        vision_tokens=tuple(len(trace.vision_positions) for trace in per_scale),
        views=[view.describe() for view in reference.views],
        view_maps=None if result.view_maps is None else [maps.float().numpy() for maps in result.view_maps],
    )


def shown_images(media: Media, trace: Trace) -> list[Image.Image]:
    """The image each map is drawn over: the prompt's images, or a video's first frame of each group of frames."""
    if not isinstance(media, Video):
        return as_images(media)
    firsts = {view.image_index: view.frames[0] for view in trace.views}
    return [media.frames[firsts[index]] for index in sorted(firsts)]


def explain_many(
    model: ModelAdapter,
    image: ImageInput | Sequence[ImageInput] | None = None,
    prompt: str = "",
    answer: str | None = None,
    methods: Sequence[str] = ("tam", "msea_arc"),
    *,
    video: VideoInput | None = None,
    fps: float | None = None,
    frames: int | None = None,
    max_new_tokens: int = 64,
    notice: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
    **options,
) -> dict[str, Explanation]:
    """One `Explanation` per method of one answer, sharing the forwards (`SharedTraces`): each distinct input
    runs once for all methods, and a generated answer's scale-1 trace is the generation itself.  Equal to
    calling `explain` per method.  `options` go to the methods that take them (e.g. `scales`, `arc_k`), and one
    prefixed with a method's name to that method alone (`**{"msea.scales": (1.0, 1.5)}`); other keywords
    (`grounding`, `n_candidates`) to every `explain`."""
    settings = {key: options.pop(key) for key in ("grounding", "n_candidates") if key in options}
    explainers = {name: get_method(name, **options_for(name, options)) for name in methods}
    media = read_media(model, image, video, fps, frames)
    traces = SharedTraces.prepare(model, media, prompt, answer, max_new_tokens,
                                  any(e.needs_gradients for e in explainers.values()), progress)
    said: set[str] = set()

    def once(line: str) -> None:  # a skipped scale is named once, not once per method
        if line not in said:
            said.add(line)
            (notice or _warn)(line)

    return {name: explain(model, prompt=prompt, method=name, traces=traces, notice=once, progress=progress,
                          **settings, **options_for(name, options)) for name in methods}


def usable_scales(model: ModelAdapter, image: Media, scales: tuple[float, ...],
                  notice: Callable[[str], None]) -> list[float]:
    """The `scales` the model can take for `image` (for each of several images; a video at scale 1 only), in
    order; each one it cannot take is named to `notice`; a UserError when none is left."""
    usable, refused = [], {}
    for scale in scales:
        try:
            if isinstance(image, Video):
                model.scaled_images(image, scale)
            for one in [] if isinstance(image, Video) else as_images(image):
                model.check_scale(one, scale)
        except UserError as exc:
            refused[scale] = str(exc)
        else:
            usable.append(scale)
    what = "video" if isinstance(image, Video) else \
        " and ".join(f"{one.width}x{one.height}" for one in as_images(image)) + " image"
    if not usable:
        raise UserError(f"none of the scales {', '.join(map(str, scales))} can be used for this {what}: "
                        f"{next(iter(refused.values()))}")
    for scale, reason in refused.items():
        notice(f"scale {scale} skipped for this {what}: {reason}")
    return usable


def answer_token_probabilities(model: ModelAdapter, trace: Trace) -> np.ndarray:
    """(T,) the probability `trace`'s forward gave each answer token (float32 logits)."""
    logits = model.logits(trace.hidden[trace.answer_positions - 1])
    return torch.softmax(logits, -1).gather(1, trace.answer_ids[:, None])[:, 0].numpy()


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _candidates(model: ModelAdapter, probabilities: torch.Tensor, n: int) -> list[list[tuple[str, float]]]:
    """Top-n next-token predictions (text, probability) from (T, V) next-token `probabilities`."""
    top = probabilities.topk(n, dim=-1)
    return [[(model.token_text(int(i)), float(p)) for i, p in zip(ids, probs)]
            for ids, probs in zip(top.indices, top.values)]


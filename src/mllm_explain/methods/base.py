"""The one pipeline every token-activation method runs, and the common method signature.

    trace per scale -> base maps (logit lens, DESIGN §2)
                    -> remove context interference (none | ECI §3 | ARC §5)
                    -> normalise (joint with text relevances §3, or per map)
                    -> rank Gaussian filter (optional, §3), per view of the vision tokens
                    -> compose the views into one map over the image (`maps.compose`)
                    -> bring scales to one grid and aggregate (MSEA §4)

With `context_stage="after"` the raw maps are aggregated first and interference is removed once.

TAM, MSEA, ARC and MSEA+ARC are this pipeline with different settings; each lives in its own
module and states only what it changes.  Non-logit baselines override `scale_maps`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from mllm_explain.errors import UserError
from mllm_explain.maps import COMPOSITIONS, compose, composed_size
from mllm_explain.methods.filters import rank_gaussian_filter
from mllm_explain.methods.rbo import rbo_matrix
from mllm_explain.views import FULL_BOX, Box, View

if TYPE_CHECKING:
    from mllm_explain.adapters.base import ModelAdapter, Trace


@dataclass
class TokenMaps:
    """A method's output for every answer token: per image of the prompt, maps over the image region on one grid,
    in [0, 1]; context relevances (T, C) over `trace.context_positions` (NaN where not before the token); and the
    first trace's maps of each of its views before they were composed and aggregated (None where a method makes
    none)."""

    image_maps: list[Tensor]  # per image: (T, gh, gw)
    relevance: Tensor  # (T, C)
    image_box: Box = FULL_BOX
    view_maps: list[Tensor] | None = None  # per view (T, gh, gw), in [0, 1]

    @property
    def maps(self) -> Tensor:
        """(T, gh, gw): the first (or only) image's maps."""
        return self.image_maps[0]


@dataclass
class ScaleMaps:
    """One scale's processed maps, per view, before composition and aggregation."""

    views: list[Tensor]  # per view of the trace: (T, gh, gw)
    relevance: Tensor  # (T, C)
    token_probability: Tensor  # (T,) probability the model gave each answer token at this scale


@dataclass(kw_only=True)
class ExplanationMethod:
    """Common signature: `attribute(model, traces) -> TokenMaps` (Captum-style, one for all methods).

    Options are the dataclass fields; `scales` says which traces `explain` must run, `compose` how
    the views of a tiled model make one map (`maps.compose`; one view is unchanged by any rule), and
    `image_normalise` whether a prompt's several images keep one scale per token ("joint", as the maps come:
    they compare across images and frames) or each image's maps are stretched to [0, 1] ("each").
    """

    name: ClassVar[str]
    needs_attention: ClassVar[bool] = False  # traces keep the last layer's attention rows
    needs_gradients: ClassVar[bool] = False  # traces keep the model's inputs for a backward pass
    scales: tuple[float, ...] = (1.0,)
    aggregation: str = "mean"  # mean | max | confidence (weights = token probability per scale)
    compose: str = "tiles"  # tiles | mean | max | overview: chosen by measurement (docs/RESULTS.md §8)
    image_normalise: str = "joint"  # joint | each: several images' maps on one scale per token, or each to [0, 1]

    def __post_init__(self) -> None:
        self.scales = tuple(float(s) for s in self.scales)
        if not self.scales:
            raise UserError("at least one scale is needed")
        _check_choice("aggregation", self.aggregation, ("mean", "max", "confidence"))
        _check_choice("compose", self.compose, COMPOSITIONS)
        _check_choice("image_normalise", self.image_normalise, ("joint", "each"))

    def options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def attribute(self, model: ModelAdapter, traces: list[Trace]) -> TokenMaps:
        """Maps for every answer token of `traces` (one per scale, first = reference for the grid)."""
        per_scale = [self.scale_maps(model, trace) for trace in traces]
        probability = torch.stack([s.token_probability for s in per_scale])
        maps = [self.aggregate(stacked, probability)
                for stacked in common_grid([s.views for s in per_scale], traces, self.compose)]
        return TokenMaps(image_maps=self.per_image(maps), view_maps=per_scale[0].views,
                         relevance=torch.stack([s.relevance for s in per_scale]).mean(0))

    def per_image(self, maps: list[Tensor]) -> list[Tensor]:
        """Each image's (T, gh, gw) maps as `image_normalise` says: as they are (joint), or each image's to [0, 1]."""
        if self.image_normalise == "joint" or len(maps) == 1:
            return maps
        return [normalise_rows(m.flatten(1)).view_as(m) for m in maps]

    def aggregate(self, stacked: Tensor, token_probability: Tensor) -> Tensor:
        """(S, T, gh, gw) maps on one grid -> (T, gh, gw) by `aggregation`; probabilities are (S, T)."""
        if self.aggregation == "max":
            return stacked.max(0).values
        if self.aggregation == "confidence":
            weights = token_probability / token_probability.sum(0, keepdim=True).clamp_min(1e-12)
            return (weights[:, :, None, None] * stacked).sum(0)
        return stacked.mean(0)

    def scale_maps(self, model: ModelAdapter, trace: Trace) -> ScaleMaps:
        raise NotImplementedError


@dataclass(kw_only=True)
class TokenActivation(ExplanationMethod):
    """The token-activation pipeline; defaults are plain TAM (ECI, joint normalisation, filter)."""

    context: str = "eci"  # none | eci | arc
    normalise: str = "joint"  # joint (map + text relevances, TAM) | map
    filter: bool = True
    arc_k: int = 50
    arc_p: float = 0.9
    arc_form: str = "weight"  # weight: w ∝ r·(1-ρ) | threshold: w ∝ r·1[ρ < arc_tau]
    arc_tau: float = 0.5
    context_stage: str = "per_scale"  # per_scale: ECI/ARC at every scale, then aggregate | after: once, aggregated
    eci_pairing: str = "round"  # round: answer token k read where it was predicted (TAM's code) | position: at k itself
    reference_quirks: bool = False  # the reference code's maps in two context slots (DESIGN §3, docs/METHODS.md)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("context_stage", self.context_stage, ("per_scale", "after"))
        _check_choice("eci_pairing", self.eci_pairing, ("round", "position"))
        _check_choice("context", self.context, ("none", "eci", "arc"))
        _check_choice("normalise", self.normalise, ("joint", "map"))
        _check_choice("arc_form", self.arc_form, ("weight", "threshold"))
        if not 0 < self.arc_p < 1:
            raise UserError(f"arc_p must be in (0, 1), got {self.arc_p}")
        if self.arc_k < 1:
            raise UserError(f"arc_k must be positive, got {self.arc_k}")

    def scale_maps(self, model: ModelAdapter, trace: Trace) -> ScaleMaps:
        scores = self.base_scores(trace, model)
        weights = self.context_weights(trace, scores, model) if self.context != "none" else None
        return self.trace_maps(trace, scores, weights)

    def trace_maps(self, trace: Trace, scores: BaseScores, weights: Tensor | None) -> ScaleMaps:
        """One trace's pipeline from its base scores: interference removed by `weights` (None: none),
        normalised and filtered per view."""
        maps = scores.answer_maps if weights is None else remove_interference(scores.answer_maps,
                                                                              scores.context_maps, weights)
        maps, relevance = self.finish(maps, scores.relevance, scores, trace.views)
        return ScaleMaps(maps, relevance, scores.token_probability)

    def attribute(self, model: ModelAdapter, traces: list[Trace]) -> TokenMaps:
        if self.context_stage == "per_scale" or self.context == "none":
            return super().attribute(model, traces)
        # "after": aggregate the raw maps of the answer and the context over scales, then remove
        # interference, normalise and filter once (weights and relevances averaged over scales).
        scores = [self.base_scores(trace, model) for trace in traces]
        probability = torch.stack([s.token_probability for s in scores])
        answer = [self.aggregate(stacked, probability) for stacked in common_grid(
            [split_views(s.answer_maps, t.views) for s, t in zip(scores, traces)], traces, self.compose)]
        context = [stacked.mean(0) for stacked in common_grid(
            [split_views(s.context_maps, t.views) for s, t in zip(scores, traces)], traces, self.compose)]
        per_scale_weights = [self.context_weights(t, s, model) for s, t in zip(scores, traces)]
        maps = remove_interference(torch.cat([m.flatten(1) for m in answer], 1),
                                   torch.cat([m.flatten(1) for m in context], 1),
                                   torch.stack(per_scale_weights).mean(0))
        maps, relevance = self.finish(maps, torch.stack([s.relevance for s in scores]).mean(0), scores[0],
                                      [tuple(m.shape[1:]) for m in answer])
        # Each view's maps, as in the per-scale path: scale 1's own pipeline before composition.
        view_maps = self.trace_maps(traces[0], scores[0], per_scale_weights[0]).views
        return TokenMaps(image_maps=self.per_image(maps), relevance=relevance, view_maps=view_maps)

    def base_scores(self, trace: Trace, model: ModelAdapter) -> BaseScores:
        return base_scores(trace, model, pairing=self.eci_pairing, reference_quirks=self.reference_quirks)

    def context_weights(self, trace: Trace, scores: BaseScores, model: ModelAdapter) -> Tensor:
        """(T, C) weights of the context maps that make up a token's interference (ECI or ARC)."""
        weights = scores.relevance * scores.before * ~scores.same_word
        if self.context == "arc":
            rho = arc_correlation(trace, model, self.arc_k, self.arc_p)
            weights = weights * ((1 - rho) if self.arc_form == "weight" else (rho < self.arc_tau).float())
        return weights

    def finish(self, maps: Tensor, relevance: Tensor, scores: BaseScores,
               views: list[View] | list[tuple[int, int]]) -> tuple[list[Tensor], Tensor]:
        """Normalise (T, N) maps with the relevances over all N vision tokens, then filter each view's
        grid (`views`: the trace's, or grids): per view (T, gh, gw) maps, (T, C) relevances."""
        relevance = relevance.masked_fill(~scores.before, float("nan"))
        if self.normalise == "joint":
            maps, relevance = joint_normalise(maps, relevance, exclude=scores.own)
        else:
            maps, relevance = normalise_rows(maps), normalise_rows(relevance)
        per_view = split_views(maps, views)
        return ([rank_gaussian_filter(m) for m in per_view] if self.filter else per_view), relevance


@dataclass
class BaseScores:
    """Logit-lens scores of one trace (DESIGN §2), all answer tokens at once."""

    answer_maps: Tensor  # (T, N) map of every answer token, class = its own id
    context_maps: Tensor  # (C, N) the map each context slot contributes to ECI (class = its token's id)
    slot_positions: Tensor  # (C,) the position whose state stands for each context token
    relevance: Tensor  # (T, C) r_t[j] = relu(h_slot(j) · W[x_t])
    before: Tensor  # (T, C) bool: context token j precedes answer token t
    own: Tensor  # (T, C) bool: slot j is the position that predicts t (its score is the prediction itself)
    same_word: Tensor  # (T, C) bool: j is the same word as t (ECI leaves repeats alone)
    token_probability: Tensor  # (T,)


def split_views(maps: Tensor, views: list[View] | list[tuple[int, int]]) -> list[Tensor]:
    """(T, N) maps over all vision tokens (view after view) -> per view (T, gh, gw); `views` may be grids."""
    grids = [view if isinstance(view, tuple) else view.grid for view in views]
    parts = maps.split([gh * gw for gh, gw in grids], dim=1)
    return [part.reshape(-1, *grid) for part, grid in zip(parts, grids)]


def common_grid(view_maps: list[list[Tensor]], traces: list[Trace], rule: str = "tiles") -> list[Tensor]:
    """Per image of the prompt, each scale's maps of its views composed over it (`maps.compose` by `rule`) on the
    grid of the scale whose composed grid of it is largest: (S, T, *grid) each."""
    stacked = []
    for index in sorted({view.image_index for view in traces[0].views}):
        picks = [[i for i, view in enumerate(trace.views) if view.image_index == index] for trace in traces]
        views = [[trace.views[i] for i in pick] for trace, pick in zip(traces, picks)]
        size = max((composed_size(v) for v in views), key=lambda g: g[0] * g[1])
        stacked.append(torch.stack([compose([maps[i] for i in pick], v, size, rule)
                                    for maps, pick, v in zip(view_maps, picks, views)]))
    return stacked


def base_scores(trace: Trace, model: ModelAdapter, pairing: str = "round",
                reference_quirks: bool = False) -> BaseScores:
    """Logit-lens maps and context relevances of every answer token (DESIGN §2-3), in float32 from
    `model`'s unembedding: its rows of the classes explained and logits at the T predicting positions.

    `pairing` says which position stands for an earlier answer token k in ECI: "round" (TAM's code)
    reads k's relevance at k - 1, the position that predicted it, so the position predicting t (t's
    self score) is never context; "position" reads it at k.  Prompt tokens are read at their own
    position in both.  `reference_quirks` puts in two slots the maps TAM's code puts there: answer
    token 0's slot holds the map of the last template token's class, prompt token 0's the map of
    the greedy prediction at its position.
    """
    hidden = trace.hidden
    context = trace.context_positions
    context_ids = trace.input_ids[context]
    answer_ids, answer_positions = trace.answer_ids, trace.answer_positions
    n_prompt = len(trace.prompt_positions)
    vision = hidden[trace.vision_positions]  # (N, d)
    map_ids = context_ids.clone()
    if reference_quirks:
        map_ids[n_prompt] = trace.input_ids[answer_positions[0] - 1]
        if n_prompt:
            map_ids[0] = model.logits(hidden[context[:1]])[0].argmax()
    context_maps = torch.relu(model.unembed_rows(map_ids) @ vision.T)  # (C, N): a few rows of W, never (N, V)
    answer_rows = model.unembed_rows(answer_ids)  # (T, d)
    answer_maps = torch.relu(answer_rows @ vision.T) if reference_quirks else context_maps[n_prompt:]
    slots = context.clone()
    if pairing == "round":
        slots[n_prompt:] = answer_positions - 1
    relevance = torch.relu(answer_rows @ hidden[slots].T)  # (T, C)
    before = context[None, :] < answer_positions[:, None]
    own = slots[None, :] == (answer_positions[:, None] - 1)
    same_word = context_ids[None, :] == answer_ids[:, None]
    logits = model.logits(hidden[answer_positions - 1])  # (T, V): text positions only
    probability = torch.softmax(logits, -1).gather(1, answer_ids[:, None])[:, 0]
    return BaseScores(answer_maps, context_maps, slots, relevance, before, own, same_word, probability)


def remove_interference(maps: Tensor, context_maps: Tensor, weights: Tensor) -> Tensor:
    """ECI (DESIGN §3): subtract the least-squares-scaled weighted mix of context maps, then relu.

    maps (T, N), context_maps (C, N), weights (T, C) >= 0.  A token with no weighted context is
    returned unchanged (no context, no subtraction).
    """
    total = weights.sum(1, keepdim=True)
    interference = (weights / (total + 1e-8)) @ context_maps  # (T, N)
    energy = (interference * interference).sum(1)
    alpha = torch.where(energy > 0, (maps * interference).sum(1) / energy.clamp_min(1e-30), torch.zeros_like(energy))
    return torch.relu(maps - alpha[:, None] * interference)


def joint_normalise(maps: Tensor, relevance: Tensor, exclude: Tensor) -> tuple[Tensor, Tensor]:
    """Min-max over each token's map and its context relevances together (one min, one max),
    leaving out the token's own score (`exclude`) and non-context entries (NaN)."""
    usable = ~torch.isnan(relevance) & ~exclude
    rel_for_min = torch.where(usable, relevance, torch.full_like(relevance, float("inf")))
    rel_for_max = torch.where(usable, relevance, torch.full_like(relevance, float("-inf")))
    low = torch.minimum(maps.min(1).values, rel_for_min.min(1).values)[:, None]
    high = torch.maximum(maps.max(1).values, rel_for_max.max(1).values)[:, None]
    span = (high - low).clamp_min(1e-12)
    return (maps - low) / span, ((relevance - low) / span).clamp(0, 1)


def normalise_rows(values: Tensor) -> Tensor:
    """Per-row min-max to [0, 1], ignoring NaN (kept)."""
    low = torch.where(torch.isnan(values), torch.full_like(values, float("inf")), values).min(1, keepdim=True).values
    high = torch.where(torch.isnan(values), torch.full_like(values, float("-inf")), values).max(1, keepdim=True).values
    return (values - low) / (high - low).clamp_min(1e-12)


def arc_correlation(trace: Trace, model: ModelAdapter, k: int, p: float) -> Tensor:
    """ρ (T, C): RBO between the top-k next-token predictions that produced answer token t and
    context token j, both read where the token was predicted (DESIGN §5; for an answer token that is
    the position ECI's round pairing reads its relevance from).  Full-vocabulary logits only at the
    C text positions."""
    context = trace.context_positions
    logits = model.logits(trace.hidden[context - 1])  # (C, V)
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return rbo_matrix(top, p)[-len(trace.answer_positions):]


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}; got {value!r}")


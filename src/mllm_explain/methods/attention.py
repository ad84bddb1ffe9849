"""Attention baseline: last-layer attention from the position that predicts a token to each vision
token, mean over heads; context relevance is the same attention to the context tokens."""

from __future__ import annotations

from dataclasses import dataclass

from mllm_explain.methods.base import ExplanationMethod, ScaleMaps, base_scores, normalise_rows, split_views
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class Attention(ExplanationMethod):
    name = "attention"
    needs_attention = True

    def scale_maps(self, model, trace) -> ScaleMaps:
        rows = trace.attention  # (T, L)
        scores = base_scores(trace, model)
        relevance = rows[:, trace.context_positions].masked_fill(~scores.before, float("nan"))
        maps = split_views(normalise_rows(rows[:, trace.vision_positions]), trace.views)
        return ScaleMaps(maps, normalise_rows(relevance), scores.token_probability)

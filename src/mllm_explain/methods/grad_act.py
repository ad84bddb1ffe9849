"""Gradient x activation baseline: for each answer token, the gradient of its logit with respect to
the vision tokens' hidden states entering the last decoder layer, times those states, summed over
features, relu.  (The final-norm states of vision tokens do not feed later positions, so the last
layer's input is the latest point where a gradient reaches them.)"""

from __future__ import annotations

from dataclasses import dataclass

from mllm_explain.methods.base import ExplanationMethod, ScaleMaps, base_scores, normalise_rows, split_views
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class GradAct(ExplanationMethod):
    name = "grad_act"
    needs_gradients = True

    def scale_maps(self, model, trace) -> ScaleMaps:
        grads, acts = model.last_layer_gradients(trace)  # (T, N, d), (N, d)
        maps = split_views(normalise_rows((grads * acts[None]).sum(-1).relu()), trace.views)
        scores = base_scores(trace, model)
        relevance = normalise_rows(scores.relevance.masked_fill(~scores.before, float("nan")))
        return ScaleMaps(maps, relevance, scores.token_probability)

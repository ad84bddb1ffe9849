"""`model_type` -> adapter class, filled by `@register_adapter` in each family module."""

from __future__ import annotations

from mllm_explain.adapters.base import ModelAdapter

ADAPTERS: dict[str, type[ModelAdapter]] = {}
# `model_type`s known and refused, with why: a family whose transformers code cannot run here
REFUSED = {
    "llama4": "transformers 5.x cannot run Llama4ForConditionalGeneration's forward (it reads `image_outputs` from "
              "an output that has none), so there is nothing to explain",
}


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    for model_type in cls.model_types:
        ADAPTERS[model_type] = cls
    return cls

"""`model_type` -> adapter class, filled by `@register_adapter` in each family module."""

from __future__ import annotations

from mllm_explain.adapters.base import ModelAdapter

ADAPTERS: dict[str, type[ModelAdapter]] = {}


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    for model_type in cls.model_types:
        ADAPTERS[model_type] = cls
    return cls

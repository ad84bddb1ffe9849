"""Method name -> class, filled by `@register_method` in each method module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mllm_explain.errors import UserError

if TYPE_CHECKING:
    from mllm_explain.methods.base import ExplanationMethod

METHODS: dict[str, type[ExplanationMethod]] = {}


def register_method(cls: type[ExplanationMethod]) -> type[ExplanationMethod]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, **options) -> ExplanationMethod:
    """An instance of the method called `name`, configured by keyword options."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    try:
        return cls(**options)
    except TypeError as exc:
        raise UserError(f"bad option for method {name!r}: {exc}") from None


def list_methods() -> list[str]:
    return sorted(METHODS)

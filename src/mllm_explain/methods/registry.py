"""Method name -> class, filled by `@register_method` in each method module."""

from __future__ import annotations

from dataclasses import fields
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


def options_for(name: str, options: dict) -> dict:
    """The subset of `options` that method `name` takes (so one option set can serve several methods)."""
    accepted = {f.name for f in fields(METHODS[name])} if name in METHODS else set()
    return {key: value for key, value in options.items() if key in accepted}


def parse_option(text: str, names: list[str]) -> tuple[str, object]:
    """'arc_k=20' -> ('arc_k', 20), typed by the option's default in the first method that has it."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    defaults = {f.name: f.default for name in reversed(names) if name in METHODS for f in fields(METHODS[name])}
    if not sep or key not in defaults:
        known = ", ".join(sorted(defaults)) or "none"
        raise UserError(f"bad option {text!r}: expected KEY=VALUE with KEY one of {known}")
    default = defaults[key]
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return key, raw.lower() in ("true", "1", "yes")
        if isinstance(default, tuple):
            return key, tuple(float(part) for part in raw.split(",") if part.strip())
        return key, type(default)(raw)
    except ValueError:
        raise UserError(f"bad option {text!r}: {raw!r} is not a {type(default).__name__}") from None


def list_methods() -> list[str]:
    return sorted(METHODS)

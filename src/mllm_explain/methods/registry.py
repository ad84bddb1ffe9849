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
    """The options method `name` takes from `options` (so one option set can serve several methods): every
    plain key it has, then every `name.key` (a method prefix: for that method alone, and winning)."""
    accepted = {f.name for f in fields(METHODS[name])} if name in METHODS else set()
    plain = {key: value for key, value in options.items() if key in accepted}
    return {**plain, **{key[len(name) + 1:]: value for key, value in options.items() if key.startswith(f"{name}.")}}


def changed_by_plain(options: dict, names: list[str]) -> dict[str, list[str]]:
    """Each plain (unprefixed) option of `options` and the methods of `names` whose default it changes: what a
    run of several methods must say (e.g. `scales` turns `tam` into a multi-scale map)."""
    defaults = {name: {f.name: f.default for f in fields(METHODS[name])} for name in names if name in METHODS}
    return {key: [name for name in defaults if key in defaults[name] and defaults[name][key] != value]
            for key, value in options.items() if "." not in key}


def parse_option(text: str, names: list[str]) -> tuple[str, object]:
    """'arc_k=20' -> ('arc_k', 20), typed by the option's default in the first method that has it;
    'msea.scales=1,1.5' -> ('msea.scales', (1.0, 1.5)), an option of that method alone (one of `names`)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    prefix, dot, option = key.rpartition(".")
    if dot and prefix not in names:
        raise UserError(f"bad option {text!r}: {prefix!r} is not a method of this run ({', '.join(names) or 'none'})")
    owners = [prefix] if dot else names
    defaults = {f.name: f.default for name in reversed(owners) if name in METHODS for f in fields(METHODS[name])}
    if not sep or option not in defaults:
        known = ", ".join(sorted(defaults)) or "none"
        raise UserError(f"bad option {text!r}: expected [METHOD.]KEY=VALUE with KEY one of {known}")
    default = defaults[option]
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


def option_text(value: object) -> str:
    """An option's value as `parse_option` reads it: a tuple of scales (or its JSON list) as '1,1.5'."""
    return ",".join(f"{v:g}" for v in value) if isinstance(value, (tuple, list)) else str(value)


def list_methods() -> list[str]:
    return sorted(METHODS)

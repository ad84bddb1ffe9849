"""Explanation methods, found by name: `get_method("msea_arc", scales=(1.0, 0.5))`."""

from mllm_explain.methods import arc, attention, grad_act, logit_lens, msea, msea_arc, tam  # noqa: F401
from mllm_explain.methods.base import ExplanationMethod, TokenActivation, TokenMaps
from mllm_explain.methods.registry import (
    METHODS,
    changed_by_plain,
    get_method,
    list_methods,
    option_text,
    options_for,
    parse_option,
    register_method,
)

__all__ = ["METHODS", "ExplanationMethod", "TokenActivation", "TokenMaps", "changed_by_plain", "get_method",
           "list_methods", "option_text", "options_for", "parse_option", "register_method"]

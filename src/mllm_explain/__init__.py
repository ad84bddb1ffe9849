"""mllm-explain: word-by-word explanations of multimodal LLMs (MSEA + ARC over TAM)."""

from mllm_explain.adapters import load_model
from mllm_explain.errors import UserError
from mllm_explain.explain import explain
from mllm_explain.explanation import Explanation
from mllm_explain.methods import get_method, list_methods

__all__ = ["Explanation", "UserError", "explain", "get_method", "list_methods", "load_model"]
__version__ = "0.1.0"

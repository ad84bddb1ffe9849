"""mllm-explain: word-by-word explanations of multimodal LLMs (MSEA + ARC over TAM).

The public names are imported on first use, so that the command line starts (and handles Ctrl-C and
SIGTERM) before torch and transformers load."""

from importlib import import_module

_EXPORTS = {  # public name -> (module, attribute)
    "Explanation": ("mllm_explain.explanation", "Explanation"),
    "UserError": ("mllm_explain.errors", "UserError"),
    "compare": ("mllm_explain.notebook", "compare"),
    "explain": ("mllm_explain.pipeline", "explain"),
    "explain_many": ("mllm_explain.pipeline", "explain_many"),
    "get_method": ("mllm_explain.methods", "get_method"),
    "list_methods": ("mllm_explain.methods", "list_methods"),
    "load_model": ("mllm_explain.adapters", "load_model"),
    "save_report": ("mllm_explain.report", "save"),
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mllm_explain' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

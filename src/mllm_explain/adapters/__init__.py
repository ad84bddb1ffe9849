"""Model adapters and `load_model`: any supported MLLM by local path or hub id, the bundled model by default."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch

from mllm_explain.adapters import (  # noqa: F401  (registers)
    apertus1p5,
    chameleon,
    deepseek_vl,
    emu3,
    gemma3,
    gemma4,
    git,
    glm4v,
    glm5_next,
    got_ocr2,
    hunyuan_vl,
    idefics3,
    inkling2,
    internvl,
    kimi_k25,
    lfm2_vl,
    llava,
    llava_next,
    minicpmv,
    mistral3,
    molmo2,
    muse_glimmer,
    nemotron_h_omni,
    ovis2,
    paligemma,
    perception_lm,
    qwen2_vl,
    step3p7,
    stitched_hd,
    video_llama_3,
)
from mllm_explain.adapters.base import ModelAdapter, Trace
from mllm_explain.adapters.registry import ADAPTERS, REFUSED, register_adapter
from mllm_explain.devices import resolve_device, resolve_dtype
from mllm_explain.errors import UserError

BUNDLED_MODEL = Path(str(files("mllm_explain") / "checkpoints" / "synth-qwen2-vl"))
# The packages transformers builds some families' vision towers with (TimmWrapper: Perception LM, Gemma 3n), and the
# extra of this package that installs each.
VISION_EXTRAS = {"timm": "timm"}

__all__ = ["ADAPTERS", "BUNDLED_MODEL", "ModelAdapter", "Trace", "load_model", "model_source", "register_adapter"]


def model_source(name_or_path: str | Path | None = None) -> str:
    """What `load_model(name_or_path)` loads from, as the adapter's `name_or_path` will say."""
    return str(name_or_path or BUNDLED_MODEL)


def load_model(name_or_path: str | Path | None = None, device: str | torch.device | None = None,
               dtype: torch.dtype | str | None = None, device_map: str | dict | None = None,
               max_vision_tokens: int | None = None) -> ModelAdapter:
    """Load an MLLM and its processor (`from_pretrained`), wrapped in its family's adapter.

    With no argument, the bundled model.  `device`: CUDA when present, else the CPU; `dtype`: the
    weights' precision, bfloat16 on CUDA and float32 on the CPU by default (maps are computed in
    float32 either way).  `device_map="auto"` spreads a model too large for one GPU over all of them
    (needs `accelerate`); `device` is then ignored.  A hub id is only looked up in the local cache
    unless the environment allows downloads (HF_HUB_OFFLINE unset); nothing here forces a download.
    `max_vision_tokens` bounds every input scale but 1 (`ModelAdapter.max_vision_tokens`, 16,384 by default).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoModelForMultimodalLM, AutoProcessor
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if device_map is not None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = resolve_device(device)
    dtype = resolve_dtype(dtype, target)
    source = model_source(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load model {source!r}: {str(exc).splitlines()[0]}") from None
    adapter_cls = ADAPTERS.get(config.model_type)
    if config.model_type in REFUSED:
        raise UserError(f"model type {config.model_type!r} is not supported: {REFUSED[config.model_type]}")
    if adapter_cls is None:
        raise UserError(f"unsupported model type {config.model_type!r}; supported: {', '.join(sorted(ADAPTERS))}")
    try:  # before the weights: a processor's optional dependency (SmolVLM's num2words) may be missing
        processor = AutoProcessor.from_pretrained(source)
    except ImportError as exc:
        raise UserError(f"cannot load the processor of {source!r}: {str(exc).splitlines()[0]}") from None
    options = {} if device_map is None else {"device_map": device_map}
    if part := adapter_cls.submodels.get(config.model_type):  # that part alone (transformers drops its weights' prefix)
        options["config"] = getattr(config, f"{part}_config")
    try:
        # Phi-4-multimodal is registered only as a multimodal LM (it also reads audio); an Omni thinker is ITT
        loaded = options.get("config", config).model_type
        auto = AutoModelForImageTextToText if loaded in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES else \
            AutoModelForMultimodalLM
        model = auto.from_pretrained(source, dtype=dtype, **options)
    except ImportError as exc:  # a vision tower's package missing (timm), or device_map without accelerate
        raise UserError(_missing_package(exc, source, device_map)) from None
    if device_map is None:
        model = model.to(target)
    adapter = adapter_cls(model, processor, source)
    if max_vision_tokens is not None:
        adapter.max_vision_tokens = max_vision_tokens
    return adapter


def _missing_package(exc: ImportError, source: str, device_map: str | dict | None) -> str:
    """One line for an ImportError of building the model: the extra that installs a vision tower's package, else
    the `device_map` that needed it (accelerate)."""
    message = str(exc).strip().splitlines()[0]
    for package, extra in VISION_EXTRAS.items():
        if f"requires the {package} library" in message:
            return (f"cannot build the model of {source!r}: its vision tower needs the `{package}` package, which is "
                    f"not installed: pip install 'mllm-explain[{extra}]'")
    return f"device_map={device_map!r}: {message}"

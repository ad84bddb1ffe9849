"""GPU check for a session with a lent device (issue 15), in one go (not yet run on a GPU: pick `--models` to fit):

    python scripts/gpu_check.py --out gpu_check        # on a CUDA machine: full sizes, bfloat16
    python scripts/gpu_check.py --toy --out gpu_check  # anywhere (the default without CUDA): tiny models

Full-size, randomly initialised Qwen2-VL-2B, Qwen2-VL-7B, LLaVA-1.5-7B and InternVL3-8B (tiled as it ships:
a 4:3 image makes 12 tiles and the thumbnail, 3328 vision tokens in 13 views), built on the GPU in
bfloat16 from the configs below (the real checkpoints' numbers; nothing is downloaded).  Per model:
`generate` of 128 forced tokens, then `explain` of a 128-token answer with every method (and msea_arc
at three scales): time and peak GPU memory (`torch.cuda.max_memory_allocated`), each against
generation's; then bench section 6 (seven methods one by one against shared forwards, and `explain`
with generation against `generate`).  Then the bundled model's maps in bfloat16 against float32 on the same
device, within `devices.BF16_MAP_ATOL`.  Writes gpu_check.json and gpu_check.md (the table for docs/PERFORMANCE.md).

Random weights make the maps meaningless but the shapes, the kernels and the memory real.  The rank
Gaussian filter runs on the CPU (maps are moved there), so it is not timed here; `bench` times it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models: the offline tokenizers and the toy models

from tiny_models import CORPUS, LLAVA_TEMPLATE, _tokenizer, build_adapter, internvl_processor  # noqa: E402
from transformers import (  # noqa: E402
    CLIPImageProcessor,
    CLIPVisionConfig,
    InternVLConfig,
    InternVLForConditionalGeneration,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2VLForConditionalGeneration,
)

from mllm_explain import explain, list_methods, load_model  # noqa: E402
from mllm_explain.adapters import ADAPTERS, ModelAdapter  # noqa: E402
from mllm_explain.bench import forced_generate, memory_measure, sharing_case  # noqa: E402
from mllm_explain.devices import BF16_MAP_ATOL, BF16_UNCHECKED_METHODS, bf16_maps_agree  # noqa: E402
from mllm_explain.training.build import build_config, build_processor, build_tokenizer  # noqa: E402

PROMPT = "Describe this image."
ANSWER_TOKENS = 128
# The checkpoints' config.json numbers; the Qwen2-VL image is sized for 1200 merged vision tokens
# (40 x 30 cells of 28 px), LLaVA-1.5's CLIP takes 336 x 336 (576 tokens).
MODELS = {
    "Qwen2-VL-2B": dict(family="qwen2_vl", hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960,
                        vocabulary=151936, tied=True, image=(1120, 840)),
    "Qwen2-VL-7B": dict(family="qwen2_vl", hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944,
                        vocabulary=152064, tied=False, image=(1120, 840)),
    "LLaVA-1.5-7B": dict(family="llava", hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008,
                         vocabulary=32064, tied=False, image=(336, 336)),
    "InternVL3-8B": dict(family="internvl", hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944,
                         vocabulary=151674, tied=False, image=(1344, 1008)),
}
VISION_TOKENS = {"qwen2_vl": 1200, "llava": 576, "internvl": 13 * 256}  # of each family's image above
QWEN2_VL_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4)  # 2B and 7B share the ViT
PARAMETERS = {"Qwen2-VL-2B": 2.21e9, "Qwen2-VL-7B": 8.29e9, "LLaVA-1.5-7B": 7.06e9,  # the checkpoints' counts
              "InternVL3-8B": 7.94e9}  # InternVL3-8B: the model card's 7.94 B as recalled, not re-read offline


def qwen2_vl(spec: dict) -> tuple[Qwen2VLForConditionalGeneration, Any, Any]:
    """Qwen2-VL of `spec`'s sizes on the bundled model's tokenizer and processor: (class, config, processor)."""
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    config = build_config(tokenizer, text_hidden=spec["hidden"], text_layers=spec["layers"])
    half = spec["hidden"] // spec["heads"] // 2  # rotary pairs per head, split (temporal, height, width)
    config.text_config.update(dict(
        vocab_size=spec["vocabulary"], intermediate_size=spec["intermediate"], num_attention_heads=spec["heads"],
        num_key_value_heads=spec["kv_heads"], max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                         "mrope_section": [half // 4, 3 * half // 8, 3 * half // 8]}))
    config.vision_config.update(QWEN2_VL_VISION)
    config.tie_word_embeddings = spec["tied"]
    processor = build_processor(tokenizer)
    width, height = spec["image"]
    processor.image_processor.size["longest_edge"] = width * height
    return Qwen2VLForConditionalGeneration, config, processor


def llava(spec: dict) -> tuple[LlavaForConditionalGeneration, Any, Any]:
    """LLaVA-1.5: CLIP ViT-L/14 at 336 px and a Llama language model of `spec`'s sizes."""
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"], {"image_token": "<image>"}, LLAVA_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 336},
                                                                  crop_size={"height": 336, "width": 336}),
                               tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768)
    text = LlamaConfig(vocab_size=spec["vocabulary"], hidden_size=spec["hidden"],
                       intermediate_size=spec["intermediate"],
                       num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                       num_key_value_heads=spec["kv_heads"], max_position_embeddings=4096,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         tie_word_embeddings=spec["tied"])
    return LlavaForConditionalGeneration, config, processor


def internvl(spec: dict) -> tuple[InternVLForConditionalGeneration, Any, Any]:
    """InternVL3: InternViT-300M at 448 px tiles (transformers' defaults are its sizes), pixel-shuffled 0.5 to
    16x16 tokens a tile, dynamic tiling up to 12 tiles and a thumbnail, and a Qwen2.5 model of `spec`'s sizes."""
    processor = internvl_processor(448, 256)
    ids = processor.tokenizer.convert_tokens_to_ids
    text = dict(model_type="qwen2", vocab_size=spec["vocabulary"], hidden_size=spec["hidden"],
                intermediate_size=spec["intermediate"], num_hidden_layers=spec["layers"],
                num_attention_heads=spec["heads"], num_key_value_heads=spec["kv_heads"], max_position_embeddings=32768,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=spec["tied"],
                bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    config = InternVLConfig(vision_config=dict(image_size=448, patch_size=14), text_config=text,
                            image_token_id=ids("<IMG_CONTEXT>"), image_seq_length=256, downsample_ratio=0.5,
                            tie_word_embeddings=spec["tied"])
    return InternVLForConditionalGeneration, config, processor


BUILDERS = {"qwen2_vl": qwen2_vl, "llava": llava, "internvl": internvl}


def parameter_count(name: str) -> int:
    """Parameters of `name`'s config, counted on the meta device (no memory, no time)."""
    model_cls, config, _ = BUILDERS[MODELS[name]["family"]](MODELS[name])
    with torch.device("meta"):
        return sum(p.numel() for p in model_cls(config).parameters())


def full_size(name: str, device: torch.device) -> ModelAdapter:
    """The randomly initialised model `name`, built directly on `device` in bfloat16."""
    model_cls, config, processor = BUILDERS[MODELS[name]["family"]](MODELS[name])
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = model_cls(config)
    finally:
        torch.set_default_dtype(previous)
    return ADAPTERS[config.model_type](model, processor, f"random {name}")


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, int | None, Any]:
    """(seconds, peak GPU bytes or None on the CPU, result) of one call after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return seconds, torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None, result


def random_image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def suppress_unspellable(adapter: ModelAdapter) -> None:
    """Random weights pick ids the tokenizer cannot spell (its 400 words serve a vocabulary-sized head), blanks and
    special tokens: suppress those in generation, so that a caption is text that reads back as tokens."""
    tokenizer = adapter.tokenizer
    special = set(tokenizer.all_special_ids)
    keep = {i for i in range(len(tokenizer)) if i not in special and tokenizer.decode([i]).strip()}
    adapter.model.generation_config.suppress_tokens = [i for i in range(adapter.unembedding.shape[0]) if i not in keep]


def answer_of(adapter: ModelAdapter, n: int) -> str:
    """Text of `n` tokens of the tokenizer's own corpus (random weights generate ids it cannot spell)."""
    ids = adapter.tokenize_answer(" ".join(CORPUS * (1 + n // 20)))[:n]
    return adapter.tokenizer.decode(ids)


def check_model(name: str, adapter: ModelAdapter, image: Image.Image, n: int, device: torch.device) -> dict:
    """Generate and every method's explain on one model: times and peaks, absolute and as ratios."""
    gen_s, gen_peak, _ = timed(lambda: forced_generate(adapter, image, PROMPT, n), device)
    answer = answer_of(adapter, n)
    rows = []
    cases = [(m, m, {}) for m in list_methods()] + [("msea_arc, 3 scales", "msea_arc", {"scales": (1.0, 0.75, 0.5)}),
                                                    ("tam + grounding score", "tam", {"grounding": True})]
    for label, method, options in cases:  # the methods alone, as bench section 2; then the grounding's extra view
        def run(method: str = method, options: dict = options):
            return explain(adapter, image, PROMPT, answer=answer, method=method, **{"grounding": False, **options})

        seconds, peak, result = timed(run, device)
        rows.append({"method": label, "tokens": len(result.token_ids), "seconds": seconds, "peak_bytes": peak,
                     "time_ratio": seconds / gen_s, "peak_ratio": None if peak is None else peak / gen_peak,
                     "finite": bool(np.isfinite(result.grid_maps).all())})
    trace = adapter.trace(image, PROMPT, adapter.tokenize_answer(answer))
    suppress_unspellable(adapter)  # bench section 6: seven methods one by one against shared forwards
    sharing = sharing_case(adapter, image, PROMPT, n, 1, memory_measure())
    return {"sharing": {key: sharing[key] for key in ("answer_tokens", "forwards", "speed_up")}
            | {"explain_with_generation": {m: r["time_ratio"] for m, r in sharing["explain_with_generation"].items()}},
            "model": name, "parameters": sum(p.numel() for p in adapter.model.parameters()),
            "dtype": str(adapter.model.dtype).removeprefix("torch."), "vision_tokens": len(trace.vision_positions),
            "views": len(trace.views),
            "trace_bytes": trace.nbytes, "generate": {"tokens": n, "seconds": gen_s, "peak_bytes": gen_peak},
            "methods": rows}


def bf16_agreement(device: torch.device) -> list[dict]:
    """The bundled model's maps in bfloat16 against float32, every method, on `device`."""
    from mllm_explain.bench import EXAMPLE_IMAGE

    full, half = load_model(device=device, dtype="float32"), load_model(device=device, dtype="bfloat16")
    answer = "There is a red ring and a blue square."
    rows = []
    for method in list_methods():
        a = explain(full, EXAMPLE_IMAGE, PROMPT, answer=answer, method=method).grid_maps
        b = explain(half, EXAMPLE_IMAGE, PROMPT, answer=answer, method=method).grid_maps
        difference = float(np.abs(a - b).max())
        checked = method not in BF16_UNCHECKED_METHODS
        rows.append({"method": method, "max_abs_diff": difference, "mean_abs_diff": float(np.abs(a - b).mean()),
                     "checked": checked, "within": bf16_maps_agree(method, b, a) if checked else None})
    return rows


def markdown(report: dict) -> str:
    """The tables for docs/PERFORMANCE.md."""
    mib = lambda b: "-" if b is None else f"{b / 2**20:,.0f}"  # noqa: E731
    ratio = lambda r: "-" if r is None else f"{r:.2f}x"  # noqa: E731
    lines = [f"Device: {report['device_name']} ({report['mode']}), torch {report['torch']}.", ""]
    for model in report["models"]:
        gen = model["generate"]
        lines += [f"**{model['model']}** ({model['parameters'] / 1e9:.2f} B parameters, {model['dtype']}, "
                  f"{model['vision_tokens']} vision tokens in {model['views']} views, "
                  f"trace {model['trace_bytes'] / 2**20:.1f} MiB): "
                  f"generate {gen['tokens']} tokens {gen['seconds']:.2f} s, peak {mib(gen['peak_bytes'])} MiB", "",
                  "| method | tokens | explain s | explain / generate | peak MiB | peak / generate's |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['tokens']} | {r['seconds']:.2f} | {ratio(r['time_ratio'])} | "
                  f"{mib(r['peak_bytes'])} | {ratio(r['peak_ratio'])} |" for r in model["methods"]]
        sharing = model["sharing"]
        lines += ["", f"Seven methods of a {sharing['answer_tokens']}-token caption: full forwards "
                      f"{sharing['forwards']['one_by_one']} one by one, {sharing['forwards']['shared']} shared; "
                      f"shared {ratio(sharing['speed_up'])} faster; explain with generation / generate: "
                      + ", ".join(f"{m} {ratio(r)}" for m, r in sharing["explain_with_generation"].items()), ""]
    lines += [f"bfloat16 vs float32 maps of the bundled model (tolerance {BF16_MAP_ATOL}):", "",
              "| method | max abs diff | mean abs diff | within |", "|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['max_abs_diff']:.4f} | {r['mean_abs_diff']:.4f} | "
              f"{'not checked' if r['within'] is None else r['within']} |" for r in report["bf16_vs_float32"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", action="store_true", help="tiny models (the default without CUDA)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    toy = args.toy or device.type != "cuda"
    report: dict = {"mode": "toy" if toy else "full size", "device": str(device), "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
                    "parameter_counts": {name: parameter_count(name) for name in MODELS}, "models": []}
    for name in args.models.split(","):
        started = time.perf_counter()
        if toy:
            adapter = build_adapter(MODELS[name]["family"])
            adapter.model.to(device)
            image, n = random_image((168, 126)), 16
        else:
            adapter, image, n = full_size(name, device), random_image(MODELS[name]["image"]), ANSWER_TOKENS
        report["models"].append(check_model(name, adapter, image, n, device) | {
            "wall_seconds": time.perf_counter() - started})
        print(f"{name}: {report['models'][-1]['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
        del adapter
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report["bf16_vs_float32"] = bf16_agreement(device)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    table = markdown(report)
    (args.out / "gpu_check.md").write_text(table)
    print(table)
    return report


if __name__ == "__main__":
    main()

"""Run TAM's reference code (xmed-lab/TAM, `tam.py`) on the bundled model and store only its outputs
(answer token ids and the uint8 map of every generation round) as the known-answer fixture of
tests/test_tam_reference.py.

The reference is read from a local clone given by --tam-repo and is never copied into this project.
It is driven as its Qwen2-VL demo drives it: greedy `generate` with hidden states, logits = LM head
of the last hidden state per round, special ids marking the vision span, the prompt text and the
start of the answer, `TAM(..., eval_only=True)` for every round.

    git clone https://github.com/xmed-lab/TAM /tmp/TAM   # any copy of the repository
    python scripts/tam_reference_fixture.py --tam-repo /tmp/TAM --out tests/fixtures/tam_reference
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mllm_explain import load_model
from mllm_explain.data.synth import iter_scenes

PROMPT = "Describe this image."


def load_reference(repo: Path):
    """Import the reference's tam.py; PyMuPDF (`fitz`) is only used for its LaTeX rendering, which
    eval mode never reaches, so a placeholder module stands in when it is not installed."""
    if importlib.util.find_spec("fitz") is None:
        sys.modules["fitz"] = types.ModuleType("fitz")
    spec = importlib.util.spec_from_file_location("tam_reference", repo / "tam.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TAM


def special_ids(tokenizer) -> dict:
    """The demo's identifiers, spelt in our tokenizer's ids."""
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    vision_start, vision_end = ids("<|vision_start|>")[0], ids("<|vision_end|>")[0]
    return {"img_id": [vision_start, vision_end],
            "prompt_id": [vision_end, ids("<|im_end|>\n<|im_start|>assistant")],
            "answer_id": [ids("\n<|im_start|>assistant\n"), -1]}


@torch.no_grad()
def reference_maps(TAM, model, image: Image.Image, prompt: str) -> tuple[list[int], np.ndarray]:
    """Answer ids (end-of-turn dropped) and the reference's uint8 map for every round (R, gh, gw)."""
    inputs = model.encode(image, prompt)
    outputs = model.model.generate(**inputs, max_new_tokens=48, do_sample=False, use_cache=True,
                                   output_hidden_states=True, return_dict_in_generate=True)
    logits = [model.model.lm_head(states[-1]).float() for states in outputs.hidden_states]
    tokens = outputs.sequences[0].tolist()
    merge = model.model.config.vision_config.spatial_merge_size
    _, height, width = inputs["image_grid_thw"][0].tolist()
    records: list = []
    maps = [TAM(tokens, (height // merge, width // merge), logits, special_ids(model.tokenizer), image,
                model.processor, "", round_index, records, True) for round_index in range(len(logits))]
    answer = tokens[inputs["input_ids"].shape[1]:]
    stops = {model.tokenizer.eos_token_id, *model._eos_ids()}
    while answer and answer[-1] in stops:
        answer = answer[:-1]
    return answer, np.stack(maps[:len(answer)]).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tam-repo", type=Path, required=True, help="a local copy of github.com/xmed-lab/TAM")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/tam_reference"))
    parser.add_argument("--size", type=int, default=224, help="side of the stored synthetic scenes, px")
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    args = parser.parse_args()
    TAM = load_reference(args.tam_repo)
    model = load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    images = {"scene.png": Image.open("examples/scene.png").convert("RGB")}
    for index, scene in enumerate(iter_scenes(n=2, seed=11, split="val")):
        images[f"val_{index}.png"] = Image.fromarray(scene.image).resize((args.size, args.size), Image.BICUBIC)
    weights = Path(model.name_or_path) / "model.safetensors"
    arrays, meta = {}, {"prompt": PROMPT, "model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                        "images": {}}
    for name, image in images.items():
        if name != "scene.png":
            image.save(args.out / name)
        answer, maps = reference_maps(TAM, model, image, PROMPT)
        arrays[name] = maps
        meta["images"][name] = {"answer_ids": answer, "answer": model.tokenizer.decode(answer)}
        print(name, repr(meta["images"][name]["answer"]), maps.shape)
    np.savez_compressed(args.out / "reference_maps.npz", **arrays)
    (args.out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()

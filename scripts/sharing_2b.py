"""Bench section 6 (one forward for every method) on a randomly initialised model of Qwen2-VL-2B's size, on the CPU.

    python scripts/sharing_2b.py --tokens 32 --side 448     # prints the JSON for docs/PERFORMANCE.md

The model is scripts/gpu_check.py's full-size Qwen2-VL-2B (the checkpoint's config numbers, nothing downloaded),
in float32 on the CPU; the image is random pixels of `--side` px.  Random weights would pick ids the tokenizer
cannot spell: those, blanks and special tokens are suppressed, so every answer is `--tokens` long and reads back
as text.  Time per sample of a generation and seven methods, one by one against shared, and `explain` with
generation against `generate` alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check  # noqa: E402

from mllm_explain.adapters import ADAPTERS  # noqa: E402
from mllm_explain.bench import memory_measure, sharing_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = gpu_check.MODELS["Qwen2-VL-2B"]
    model_cls, config, processor = gpu_check.BUILDERS[spec["family"]](spec)
    adapter = ADAPTERS[config.model_type](model_cls(config).float(), processor, "random Qwen2-VL-2B")
    gpu_check.suppress_unspellable(adapter)
    image = gpu_check.random_image((args.side, args.side))
    result = sharing_case(adapter, image, "Describe this image.", args.tokens, args.repeats, memory_measure())
    print(json.dumps({"model": "random Qwen2-VL-2B, float32, CPU", "threads": torch.get_num_threads(),
                      "side": args.side, **result}, indent=1))


if __name__ == "__main__":
    main()

"""Where does a checkpoint's logit-lens grounding get lost?  (docs/MODEL.md, explainability gate)

    python scripts/logit_lens_layers.py --model PATH --n 30

For every object noun of the reference captions of `n` validation scenes (teacher-forced), reads
the noun's logit `x_i · W[noun]` at every vision token from the residual stream after each decoder
layer (layer 0: the merger output), two ways: through the final RMSNorm (what the logit lens and
the gate use) and raw (no normalisation).  Prints per layer the pointing game (map maximum inside
the noun's mask, as `mllm-explain pointing`) and the standardised gap (mean inside the mask minus
mean outside, over the map's standard deviation): a map can be brighter on the object on average
(gap > 0) and still peak elsewhere.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
from PIL import Image

from mllm_explain.adapters import load_model
from mllm_explain.data.synth import CATEGORY_IDS, DEFAULT_PROMPT, NOUN_CATEGORY, iter_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--n", type=int, default=30, help="validation scenes")
    args = parser.parse_args()
    adapter = load_model(args.model)
    W = adapter.unembedding.detach().float()
    hits: dict[tuple[int, str], list[bool]] = {}
    gaps: dict[tuple[int, str], list[float]] = {}
    for scene in iter_scenes(args.n, 0, "val"):
        ids = adapter.tokenize_answer(scene.caption)
        inputs = adapter.encode(Image.fromarray(scene.image), DEFAULT_PROMPT, ids)
        with torch.no_grad():
            states = adapter.model(**inputs, output_hidden_states=True, use_cache=False).hidden_states
            vision = (inputs["input_ids"][0] == adapter.image_token_id).nonzero().flatten()
            gh, gw = adapter.vision_grid(inputs)
            last = len(states) - 1  # transformers returns the last layer's output already normed
            readings = {(layer, kind): (x if layer == last or kind == "raw" else adapter.final_norm(x)).float()
                        for layer, state in enumerate(states) for kind in ("norm", "raw")
                        for x in [state[0, vision]] if not (layer == last and kind == "raw")}
        labels = cv2.resize(scene.seg_label, (gw, gh), interpolation=cv2.INTER_NEAREST)
        for t, token in enumerate(adapter.token_texts(ids)):
            category = NOUN_CATEGORY.get(token.strip(" .,").lower())
            if category is None:
                continue
            mask = scene.seg_label == CATEGORY_IDS[category]
            inside = labels == CATEGORY_IDS[category]
            for key, h in readings.items():
                grid = (h @ W[ids[t]]).reshape(gh, gw).numpy()
                upsampled = cv2.resize(grid, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
                hits.setdefault(key, []).append(bool(mask[np.unravel_index(np.argmax(upsampled), mask.shape)]))
                if inside.any() and (~inside).any():
                    gaps.setdefault(key, []).append((grid[inside].mean() - grid[~inside].mean()) / (grid.std() + 1e-8))
    print(f"{len(hits[(0, 'norm')])} object nouns in {args.n} validation scenes")
    print("| after layer | pointing, final norm | gap, final norm | pointing, raw | gap, raw |")
    print("| --- | --- | --- | --- | --- |")
    for layer in range(len(states)):
        raw = (layer, "raw") if (layer, "raw") in hits else (layer, "norm")
        print(f"| {layer} | {np.mean(hits[(layer, 'norm')]):.3f} | {np.mean(gaps[(layer, 'norm')]):+.2f} | "
              f"{np.mean(hits[raw]):.3f} | {np.mean(gaps[raw]):+.2f} |")


if __name__ == "__main__":
    main()

"""Which image or frame a word draws on, on the bundled model (docs/RESULTS.md, "Several images and video").

Two images: each test scene is paired with the next one in one prompt; for every object noun of the greedy answer
whose category is in exactly one of the two images, the share of its map mass on that image (`image_shares`), against
that image's share of the vision tokens (what a map spread evenly would give).  Video: synthetic test clips (`data
clips`: 8 frames at 2 fps, one object entering at frame 4, so the last two of four groups of frames show it); for
every noun of the transient object's category, its share on the groups that show it, against their share of tokens
(0.5).  Nothing is tuned: the model was trained on single images, and this reports what it does.

    python scripts/several_images.py --pairs 60 --clips 40 [--methods tam,msea_arc]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mllm_explain import load_model
from mllm_explain.data.synth import CATEGORY_IDS, iter_scenes, write_clips
from mllm_explain.evaluation.words import classify_words
from mllm_explain.pipeline import explain_many

PROMPT = "Describe the images."
VIDEO_PROMPT = "Describe this video."


def noun_shares(result, holding: dict[int, list[int]]) -> list[tuple[float, float]]:
    """(share of map mass, share of vision tokens) on the images that hold each object noun's category; `holding`
    maps a category id to those images' indices (nouns of categories in every image or in none are left out)."""
    cells = np.array([maps[0].size for maps in result.image_grid_maps], dtype=float)
    out = []
    for w, cls in enumerate(classify_words(result.words, {name: i for name, i in CATEGORY_IDS.items()})):
        images = holding.get(cls.category) if cls.category is not None else None
        if not images or len(images) == len(cells):
            continue
        tokens = [t for t, index in enumerate(result.word_index) if index == w]
        out.append((float(result.image_shares[tokens].mean(0)[images].sum()), float(cells[images].sum() / cells.sum())))
    return out


def summary(pairs: list[tuple[float, float]]) -> dict:
    if not pairs:
        return {"nouns": 0}
    share, chance = zip(*pairs)
    return {"nouns": len(pairs), "mean_share": round(statistics.mean(share), 3),
            "mean_token_share": round(statistics.mean(chance), 3),
            "above_token_share": round(float(np.mean([s > c for s, c in pairs])), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--methods", default="tam,msea_arc")
    args = parser.parse_args()
    methods = args.methods.split(",")
    model = load_model()
    found: dict[str, dict[str, list]] = {"images": {m: [] for m in methods}, "video": {m: [] for m in methods}}
    scenes = list(iter_scenes(args.pairs + 1, 0, "test"))
    for first, second in zip(scenes, scenes[1:]):
        holding: dict[int, list[int]] = {}
        for index, scene in enumerate((first, second)):
            for category in scene.categories.values():
                holding.setdefault(category, []).append(index)
        results = explain_many(model, [Image.fromarray(first.image), Image.fromarray(second.image)], PROMPT,
                               methods=methods, grounding=False)
        for name, result in results.items():
            found["images"][name] += noun_shares(result, holding)
    with tempfile.TemporaryDirectory() as folder:
        records = json.loads(write_clips(Path(folder), args.clips, 0, "test").read_text())
        for record in records:
            results = explain_many(model, prompt=VIDEO_PROMPT, video=Path(folder) / record["video"], methods=methods,
                                   grounding=False, notice=lambda _line: None)
            for name, result in results.items():
                groups = [k for k in range(len(result.images)) if result.frames_of(k)["frames"][0] >= record["enters"]]
                found["video"][name] += noun_shares(result, {CATEGORY_IDS[record["transient"]]: groups})
    print(json.dumps({kind: {name: summary(pairs) for name, pairs in by_method.items()}
                      for kind, by_method in found.items()}, indent=1))


if __name__ == "__main__":
    main()

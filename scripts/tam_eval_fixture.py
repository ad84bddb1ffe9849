"""Run TAM's own evaluation code (xmed-lab/TAM, `eval.py`: its `evaluate`) on fixed maps and store only
its outputs, the known answer of tests/test_tam_protocol.py for `evaluate --protocol tam`.

Cases: synthetic scenes captioned by the bundled model and explained by our `tam` (its uint8 grid maps
for every generated token, the end token's included), and hand-made captions on TAM's COCO category
table with seeded maps, each built to reach one of TAM's rules: 'dog' -> 'hot dog', 'bear' -> 'teddy
bear', 'oven' never scored, the merge of two mentions when a two-word category ('traffic light') is
absent from the mask, a missing mask, a mask of another size, an empty foreground (NaN precision), words
glued after punctuation ('-shirt', '.5') and a caption whose re-tokenisation does not match its maps
(dropped).

The reference is read from a local clone given by --tam-repo and is never copied into this project; its
optional imports that `evaluate` never reaches for these numbers (`fitz` for LaTeX, `rouge` for ROUGE-L)
stand in as placeholders when absent.  NLTK's data comes from --nltk-data (a folder with taggers/ and
corpora/wordnet); TAM's code reads the tagger through NLTK's own loader, so the tagger is handed to it in
NLTK's JSON format, converted from whichever format --nltk-data holds.

    git clone https://github.com/xmed-lab/TAM /tmp/TAM   # any copy of the repository
    python scripts/tam_eval_fixture.py --tam-repo /tmp/TAM --nltk-data NLTK_DATA_DIR
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from mllm_explain import load_model
from mllm_explain.data.synth import DEFAULT_PROMPT, iter_scenes
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import TAM_COCO_CATEGORIES
from mllm_explain.evaluation.tam_protocol import TamLanguage, grid_uint8, word_groups
from mllm_explain.pipeline import SharedTraces, explain

END = "<|im_end|>"
# (name, caption, categories present in the mask, mask kind): hand-made captions on TAM's COCO table.
HANDMADE = [
    ("coco_words", "A dog and a bear sit by the oven near a hot dog and a teddy bear.", (18, 23, 58, 79, 88), "image"),
    ("merge_bug", "A person and a cat near a traffic light on the table.", (1, 17, 67), "image"),
    ("glued_words", "A man in a T-shirt holds 2.5 cups of tea, and a cat.", (1, 47, 17), "image"),
    ("missing_mask", "Two people walk a dog past a bus.", (1, 18, 6), "missing"),
    ("other_size", "A cat sleeps on a red couch beside a laptop.", (17, 63, 73), "other_size"),
    ("empty_foreground", "A bird sits on a bench.", (16, 15), "image"),
    ("no_noun", "It is there, and they are.", (), "image"),
]
GRID = (8, 10)
IMAGE_SIZE = (64, 80)  # (H, W) of the hand-made masks; "other_size" uses another


def load_tam_eval(repo: Path, nltk_json: Path):
    """Import the reference's eval.py with NLTK pointed at the fixture's data (no download)."""
    import nltk

    for name in ("fitz", "rouge"):
        if importlib.util.find_spec(name) is None:
            module = types.ModuleType(name)
            if name == "rouge":
                module.Rouge = _NoRouge
            sys.modules[name] = module
    nltk.data.path.insert(0, str(nltk_json))
    nltk.download = lambda *args, **kwargs: True  # eval.py asks for the tagger at import; it is on the path
    sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("tam_eval_reference", repo / "eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _NoRouge:
    """Stands in for `rouge.Rouge` (ROUGE-L is not part of the fixture)."""

    def get_scores(self, hypothesis, reference):
        return [{"rouge-l": {"f": 0.0}}]


def tagger_as_json(language: TamLanguage, folder: Path) -> None:
    """The tagger in NLTK's own JSON format, under folder/taggers/averaged_perceptron_tagger_eng/."""
    target = folder / "taggers" / "averaged_perceptron_tagger_eng"
    target.mkdir(parents=True)
    parts = {"weights": language.tagger.model.weights, "tagdict": language.tagger.tagdict,
             "classes": sorted(language.tagger.classes)}
    for part, value in parts.items():
        (target / f"averaged_perceptron_tagger_eng.{part}.json").write_text(json.dumps(value))


def blob_maps(rng: np.random.Generator, count: int) -> np.ndarray:
    """Seeded smooth uint8 grid maps, one per token."""
    maps = []
    for _ in range(count):
        ys, xs = np.mgrid[0:GRID[0], 0:GRID[1]]
        cy, cx = rng.uniform(0, GRID[0]), rng.uniform(0, GRID[1])
        value = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * rng.uniform(1, 3) ** 2)) + 0.2 * rng.random(GRID)
        maps.append(value / value.max())
    return grid_uint8(np.stack(maps))


def blob_mask(rng: np.random.Generator, categories: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, dtype=np.uint8)
    for category in categories:
        top, left = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        mask[top:top + size[0] // 2, left:left + size[1] // 2] = category
    return mask


def cases(model, args) -> list[dict]:
    """Every case's ids, uint8 maps, mask (None when missing) and categories."""
    result = []
    for index, scene in enumerate(iter_scenes(args.scenes, seed=5, split="val")):
        image = Image.fromarray(scene.image)
        ids = model.generate(image, DEFAULT_PROMPT, max_new_tokens=256, keep_stop=True)
        explanation = explain(model, image, DEFAULT_PROMPT, method="tam", grounding=False,
                              traces=SharedTraces(model, image, DEFAULT_PROMPT, ids))
        result.append({"name": f"scene_{index}", "ids": ids, "maps": grid_uint8(explanation.grid_maps),
                       "mask": scene.seg_label, "categories": scene.categories})
        print(result[-1]["name"], repr(model.tokenizer.decode(ids)))
    rng = np.random.default_rng(0)
    for name, caption, present, kind in HANDMADE:
        ids = model.tokenizer(caption + END, add_special_tokens=False)["input_ids"]
        maps = blob_maps(rng, len(ids))
        if name == "empty_foreground":  # every token of 'bird': nothing above Otsu's threshold
            words, groups = word_groups(model.tokenizer, ids)
            maps[groups[words.index("bird")]] = 0
        size = (48, 100) if kind == "other_size" else IMAGE_SIZE
        mask = None if kind == "missing" else blob_mask(rng, present, size)
        result.append({"name": name, "ids": list(ids), "maps": maps, "mask": mask, "categories": TAM_COCO_CATEGORIES})
    hello = model.tokenizer("A hello world.", add_special_tokens=False)["input_ids"]
    split = [i for token in hello for i in model.tokenizer(model.tokenizer.decode([token]),
                                                           add_special_tokens=False)["input_ids"]]
    letters = [model.tokenizer.convert_tokens_to_ids(c) for c in "hello"]
    mismatched = split[:1] + letters + split[2:]
    if model.tokenizer.tokenize(model.tokenizer.decode(mismatched)) == [model.tokenizer.convert_ids_to_tokens(i)
                                                                        for i in mismatched]:
        raise SystemExit("the mismatch case re-tokenises to the same tokens: choose another")
    result.append({"name": "token_mismatch", "ids": mismatched, "maps": blob_maps(rng, len(mismatched)),
                   "mask": blob_mask(rng, (1,), IMAGE_SIZE), "categories": TAM_COCO_CATEGORIES})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tam-repo", type=Path, required=True, help="a local copy of github.com/xmed-lab/TAM")
    parser.add_argument("--nltk-data", type=Path, required=True,
                        help="folder with NLTK's tagger (taggers/) and WordNet (corpora/wordnet)")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/tam_eval"))
    parser.add_argument("--scenes", type=int, default=12, help="synthetic scenes captioned by the bundled model")
    args = parser.parse_args()
    if not (args.tam_repo / "eval.py").is_file():
        print(f"error: {args.tam_repo} has no eval.py: give a copy of TAM's repository", file=sys.stderr)
        raise SystemExit(2)
    try:
        language = TamLanguage(args.nltk_data)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    model = load_model()
    converted = Path(tempfile.mkdtemp())
    tagger_as_json(language, converted)
    reference = load_tam_eval(args.tam_repo, converted)
    args.out.mkdir(parents=True, exist_ok=True)
    maps, records = {}, []
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases(model, args):
            mask_name = f"{case['name']}.png"
            if case["mask"] is not None:
                cv2.imwrite(str(args.out / mask_name), case["mask"])
            mask_path = str(args.out / mask_name) if case["mask"] is not None else str(Path(scratch) / "none.png")
            ids = [torch.tensor(case["ids"])]
            obj, func, _, _, precision, recall = reference.evaluate(
                list(case["maps"]), ids, model.processor, ["a reference"], mask_path, case["categories"])
            words = reference.ids_to_word_groups(ids, model.processor)[0]
            maps[case["name"]] = case["maps"]
            records.append({"name": case["name"], "ids": case["ids"], "categories": case["categories"],
                            "mask": mask_name if case["mask"] is not None else None,
                            "words": words, "word_types": [reference.get_word_type(word) for word in words],
                            **{key: plain(values) for key, values in
                               (("obj_iou", obj), ("func_iou", func), ("precision", precision), ("recall", recall))}})
            print(case["name"], words, records[-1]["obj_iou"], records[-1]["precision"])
    pooled = {key: [math.nan if v is None else v for r in records for v in r[key]]
              for key in ("obj_iou", "func_iou", "precision", "recall")}
    means = {key: sum(values) / len(values) for key, values in pooled.items()}  # TAM's main(): NaN stays NaN
    np.savez_compressed(args.out / "maps.npz", **maps)
    (args.out / "cases.json").write_text(json.dumps({"tam_commit": "7c7df1d", "cases": records,
                                                     "means": plain(means)}, indent=1) + "\n")
    print(means)


def plain(values):
    """JSON values: floats, NaN as null."""
    if isinstance(values, dict):
        return {key: plain(value) for key, value in values.items()}
    if isinstance(values, list):
        return [plain(value) for value in values]
    return None if math.isnan(values) else float(values)


if __name__ == "__main__":
    main()

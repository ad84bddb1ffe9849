"""What MSEA's scales do to plausibility: each scale's own map, and a resolution control for each.

    python scripts/msea_diagnostic.py --data test_scenes --scales 0.75,1.5 --out msea_diagnostic.json

For every scene (the model's greedy caption, as `evaluate` explains it), TAM's map is made from the
trace at each input scale alone (`tam -o scales=s`) and scored against a control that has that map's
resolution with the other map's content: below 1x, the 1x map averaged down to the scale's grid and
brought back (the resolution the smaller grid allows, with the 1x map's content); above 1x, the
scale's map averaged down to the 1x grid (the enlarged input's content at the 1x resolution). The
difference splits what a scale changes into resolution and content. Every map is scored as `evaluate`
scores it (Obj-IoU, precision, recall, Func-IoU) and Obj-IoU is split by object size (mask area in
merged-token cells at full size, --cell-px). MSEA as configured (`msea`, the defaults, or --msea-scales)
is scored beside them. Differences from `tam 1x` come with 95% bootstrap intervals over the mentions.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mllm_explain.adapters import load_model
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import FORMATS, load_samples
from mllm_explain.evaluation.metrics import f1_iou, mean, score_maps
from mllm_explain.images import load_image
from mllm_explain.pipeline import SharedTraces, explain

SIZE_CLASSES = ((0.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, math.inf))  # merged-token cells at full size


def pooled(maps: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(T, gh, gw) maps averaged down to `grid` (area) and back up bilinearly, as MSEA brings a scale's map to
    the 1x grid: the coarser grid's resolution with the 1x map's content."""
    tensor = torch.from_numpy(maps)[:, None].float()
    coarse = torch.nn.functional.adaptive_avg_pool2d(tensor, grid)
    back = torch.nn.functional.interpolate(coarse, size=maps.shape[1:], mode="bilinear", align_corners=False)
    return back[:, 0].numpy()


def control(scale: float) -> str:
    """The resolution control of `scale`'s map (module docstring)."""
    return f"1x map at {scale:g}x grid" if scale < 1 else f"{scale:g}x map at 1x grid"


def size_class(cells: float) -> str:
    low, high = next((low, high) for low, high in SIZE_CLASSES if low <= cells < high)
    return f"{low:g}-{high:g}" if high < math.inf else f">={low:g}"


def _difference(entry: dict | None) -> str:
    if entry is None:
        return "–"
    low, high = entry["interval"]
    return f"{entry['minus_tam_1x']:+.3f} ({low:+.3f} to {high:+.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--format", default="synthetic", choices=FORMATS, help="the dataset's layout, as evaluate's")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--scales", default="0.75,1.5")
    parser.add_argument("--msea-scales", default=None, help="MSEA's scales, e.g. 1,0.75 (its default if omitted)")
    parser.add_argument("--cell-px", type=int, default=28)
    parser.add_argument("--model", default=None)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("msea_diagnostic.json"))
    args = parser.parse_args()
    try:
        diagnose(args)
    except (UserError, ValueError) as exc:  # a missing dataset, an unknown model, bad --scales: one line, exit 2
        parser.exit(2, f"error: {exc}\n")


def diagnose(args: argparse.Namespace) -> None:
    """Score every map variant of every scene in `args.data`, write `args.out` and print the table."""
    model = load_model(args.model)
    scales = [float(s) for s in args.scales.split(",")]
    msea = {} if args.msea_scales is None else {"scales": tuple(float(s) for s in args.msea_scales.split(","))}
    variants = ["tam 1x", *[f"tam {s:g}x alone" for s in scales], *[control(s) for s in scales], "msea"]
    mentions: list[tuple[str, dict[str, float]]] = []  # (size class, variant -> IoU) per object mention
    func: dict[str, list[float]] = {v: [] for v in variants}
    found: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}  # (precision, recall) per mention
    for sample in tqdm(load_samples(args.data, args.format)[:args.limit], desc="scenes"):
        image, mask = load_image(sample.image), sample.mask()
        try:
            traces = SharedTraces.prepare(model, image, sample.prompt, None)
        except UserError:  # an empty caption: nothing to score, as in `evaluate`
            continue
        full = explain(model, image, sample.prompt, method="tam", traces=traces, grounding=False)
        maps = {"tam 1x": full.grid_maps, "msea": explain(model, image, sample.prompt, method="msea", traces=traces,
                                                          grounding=False, **msea).grid_maps}
        for s in scales:
            alone = explain(model, image, sample.prompt, method="tam", scales=(s,), traces=traces, grounding=False)
            maps[f"tam {s:g}x alone"] = alone.grid_maps
            maps[control(s)] = (pooled(full.grid_maps, alone.grid_maps.shape[1:]) if s < 1 else
                                pooled(alone.grid_maps, full.grid_maps.shape[1:]))
        scored = {v: score_maps(m, full.word_index, full.words, mask, sample.categories) for v, m in maps.items()}
        for variant, scores in scored.items():
            func[variant] += [w.background for w in scores.words if w.word_class.kind == "function"]
        for index, mention in enumerate(scored["tam 1x"].mentions):
            cells = float((mask == mention.category).sum()) / args.cell_px**2
            mentions.append((size_class(cells), {v: scored[v].mentions[index].iou for v in variants}))
            for variant in variants:
                mention = scored[variant].mentions[index]
                found[variant].append((mention.precision, mention.recall))
    classes = [size_class(low) for low, _ in SIZE_CLASSES]
    rng = np.random.default_rng(0)
    result = {}
    for variant in variants:
        obj = [m[variant] for _, m in mentions]
        by_size = {}
        for name in classes:
            pairs = np.array([(m[variant], m["tam 1x"]) for c, m in mentions if c == name], dtype=float).reshape(-1, 2)
            pairs = pairs[~np.isnan(pairs).any(1)]
            if len(pairs):
                delta = pairs[:, 0] - pairs[:, 1]
                draws = delta[rng.integers(0, len(delta), (args.draws, len(delta)))].mean(1)
                by_size[name] = {"n": len(pairs), "obj_iou": float(pairs[:, 0].mean()),
                                 "minus_tam_1x": float(delta.mean()),
                                 "interval": [float(v) for v in np.percentile(draws, [2.5, 97.5])]}
        result[variant] = {"f1_iou": f1_iou(mean(obj), mean(func[variant])), "obj_iou": mean(obj),
                           "func_iou": mean(func[variant]), "precision": mean([p for p, _ in found[variant]]),
                           "recall": mean([r for _, r in found[variant]]), "obj_iou_by_size": by_size}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    header = " | ".join(f"{c} cells: Obj-IoU − `tam 1x`" for c in classes)
    print(f"| map | F1-IoU | Obj-IoU | precision | recall | Func-IoU | {header} |\n|" + " --- |" * (6 + len(classes)))
    for variant, r in result.items():
        cells = " | ".join(_difference(r["obj_iou_by_size"].get(c)) for c in classes)
        print(f"| {variant} | {r['f1_iou']:.3f} | {r['obj_iou']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['func_iou']:.3f} | {cells} |")
    by_size = result["tam 1x"]["obj_iou_by_size"]
    print("mentions (Obj-IoU of `tam 1x`) per size class:",
          {c: (by_size[c]["n"], round(by_size[c]["obj_iou"], 3)) for c in classes if c in by_size})


if __name__ == "__main__":
    main()

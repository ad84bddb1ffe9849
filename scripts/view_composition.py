"""How a tiled model's views should be composed into one map: measured on the multi-view tiny models.

For every family whose tiny model (tests/tiny_models.py, projector sharpened as in the layout tests) shows the
image as several views, paint over one region of the image at a time, take each vision token's change as a map
over its view, compose the views by each rule of `mllm_explain.maps.compose`, and score how well the composed
map localises the change: the share of its mass inside the region, and the share of its top cells (as many as
the region has) inside it.  Random weights carry no meaning, so this measures geometric fidelity only: whether a
rule keeps what the views see where it is.  No trained tiled model can be loaded on this project's machines.

    python scripts/view_composition.py            # prints the table for docs/RESULTS.md §8
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from layout import token_change  # noqa: E402
from tiny_models import ANSWER, FAMILIES, PROMPT, TALL, WIDE, build_adapter, make_image  # noqa: E402

from mllm_explain.maps import COMPOSITIONS, compose, composed_size  # noqa: E402

REGIONS = [(0.05, 0.05, 0.35, 0.4), (0.05, 0.6, 0.35, 0.95), (0.6, 0.05, 0.95, 0.4), (0.6, 0.6, 0.95, 0.95),
           (0.35, 0.3, 0.65, 0.7)]


def region_mask(size: tuple[int, int], region: tuple[float, float, float, float]) -> torch.Tensor:
    """(h, w) bool: composed cells whose centre lies in `region` (fractions of the image)."""
    height, width = size
    ys, xs = (torch.arange(height) + 0.5) / height, (torch.arange(width) + 0.5) / width
    top, left, bottom, right = region
    return ((ys >= top) & (ys <= bottom))[:, None] & ((xs >= left) & (xs <= right))[None, :]


def scores(views, change: torch.Tensor, region) -> dict[str, tuple[float, float]]:
    """Per rule: (mass share inside the region, top-cell share inside it)."""
    size = composed_size(views)
    inside = region_mask(size, region)
    per_view = [change[view.positions].reshape(1, *view.grid) for view in views]
    out = {}
    for rule in COMPOSITIONS:
        composed = compose(per_view, views, size, rule)[0]
        composed = composed - composed.min()
        k = max(1, int(inside.sum()))
        top = composed.flatten().topk(k).indices
        out[rule] = (float(composed[inside].sum() / composed.sum().clamp_min(1e-12)),
                     float(inside.flatten()[top].float().mean()))
    return out


def main() -> None:
    torch.set_num_threads(2)
    table: dict[str, dict[str, list[tuple[float, float]]]] = {}  # family -> rule -> per case
    for name, family in FAMILIES.items():
        adapter = build_adapter(name, sharp=True)
        answer = adapter.tokenize_answer(ANSWER)
        for size in (WIDE, TALL, family.large):
            image = make_image(size)
            for region in REGIONS:
                views, change = token_change(adapter, image, PROMPT, answer, region)
                if len(views) < 2 or not any(v.kind == "overview" for v in views):
                    break  # one view (or one level): every rule gives the same map
                for rule, value in scores(views, change, region).items():
                    table.setdefault(name, {}).setdefault(rule, []).append(value)
    cases = sum(len(rules["mean"]) for rules in table.values())
    print(f"{cases} cases (family x image size x region) with tiles and an overview; "
          "mass inside the region / top cells inside it\n")
    print("| rule | all | " + " | ".join(table) + " |")
    print("|---" * (len(table) + 2) + "|")
    for rule in COMPOSITIONS:
        overall = [value for rules in table.values() for value in rules[rule]]
        cells = [_mean(overall), *(_mean(rules[rule]) for rules in table.values())]
        print(f"| {rule} | " + " | ".join(f"{mass:.3f} / {top:.2f}" for mass, top in cells) + " |")


def _mean(values: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(v[0] for v in values) / len(values), sum(v[1] for v in values) / len(values)


if __name__ == "__main__":
    main()

"""Is method A better than method B on the same samples?  Paired bootstrap over samples.

    python scripts/paired_bootstrap.py eval_test --a msea_arc --b tam
    python scripts/paired_bootstrap.py eval_round --a tam --b tam --b-out eval_position   # two runs

Reads OUT/samples.jsonl of `mllm-explain evaluate`, resamples the samples both methods scored
(with replacement, the same draw for both), recomputes Obj-IoU, Func-IoU and F1-IoU (and the
deletion / insertion AUCs when the run measured faithfulness) the way `summary.json` does, and prints
A − B with a 95% percentile interval for each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mllm_explain.evaluation.metrics import f1_iou, mean

METRICS = ("F1-IoU", "Obj-IoU", "Func-IoU", "deletion AUC", "insertion AUC")

Sample = tuple[list[float], list[float], list[float], list[float]]


def per_sample(rows: list[dict]) -> dict[str, Sample]:
    """sample id -> (object-mention IoUs, function-word background fractions, deletion AUCs,
    insertion AUCs of its object nouns; the last two empty without faithfulness)."""
    return {row["sample_id"]: ([m["iou"] for m in row.get("mentions", []) if m["iou"] is not None],
                               [w["background"] for w in row.get("words", []) if w["class"] == "function"],
                               [f["deletion_auc"] for f in row.get("faithfulness", [])],
                               [f["insertion_auc"] for f in row.get("faithfulness", [])])
            for row in rows}


def pooled_mean(samples: list[Sample], field: int) -> float:
    """The mean over all samples' values, as `summary.json` takes it (None and NaN left out)."""
    return mean([v for s in samples for v in s[field]])


def read_rows(out: Path, method: str) -> list[dict]:
    return [row for line in (out / "samples.jsonl").open() if (row := json.loads(line))["method"] == method]


def scores(samples: list[Sample]) -> tuple[float, ...]:
    obj, func = pooled_mean(samples, 0), pooled_mean(samples, 1)
    return f1_iou(obj, func), obj, func, pooled_mean(samples, 2), pooled_mean(samples, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder of an `mllm-explain evaluate` run")
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--b-out", type=Path, default=None,
                        help="read B from this run's folder instead (the same samples under other options)")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    a = per_sample(read_rows(args.out, args.a))
    b = per_sample(read_rows(args.b_out or args.out, args.b))
    ids = sorted(set(a) & set(b))
    if not ids:
        raise SystemExit(f"error: no sample scored by both {args.a} and {args.b} in {args.out}")
    observed = np.subtract(scores([a[i] for i in ids]), scores([b[i] for i in ids]))
    rng = np.random.default_rng(args.seed)
    draws = []
    for _ in range(args.draws):
        pick = rng.integers(0, len(ids), len(ids))
        draws.append(np.subtract(scores([a[ids[i]] for i in pick]), scores([b[ids[i]] for i in pick])))
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    label_b = args.b if args.b_out is None else f"{args.b} of {args.b_out}"
    print(f"{args.a} − {label_b} on {len(ids)} samples ({args.draws} paired bootstrap draws)")
    for k, name in enumerate(METRICS):
        if not np.isnan(observed[k]):
            print(f"  {name:13s} {observed[k]:+.4f}  95% interval [{low[k]:+.4f}, {high[k]:+.4f}]")


if __name__ == "__main__":
    main()

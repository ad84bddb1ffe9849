"""How much does ARC change TAM's interference removal?  (DESIGN §3, §5; docs/RESULTS.md §6)

    python scripts/arc_diagnostic.py --data val_scenes --limit 30

For every token of the model's own caption (scale 1) it compares ECI's interference mixture
(context maps weighted by r_t[j]) with ARC's (weighted by r_t[j]·(1 − ρ_j)) and prints quantiles
(10 / 50 / 90 %) of: ρ itself, the share of the mixture ARC moves (total-variation distance of the
two weightings), the share of the map each one removes, and how far ARC's map is from ECI's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mllm_explain.adapters import load_model
from mllm_explain.evaluation.datasets import load_samples
from mllm_explain.images import load_image
from mllm_explain.methods.base import arc_correlation, base_scores, remove_interference


def quantiles(values: list[float]) -> list[float]:
    return [round(float(v), 3) for v in torch.tensor(values).quantile(torch.tensor([0.1, 0.5, 0.9]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="validation scenes (mllm-explain data synth --split val)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--arc-k", type=int, default=50)
    parser.add_argument("--arc-p", type=float, default=0.9)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    model = load_model(args.model)
    rho_values, moved, removed_eci, removed_arc, arc_vs_eci = [], [], [], [], []
    for sample in load_samples(args.data, "synthetic")[: args.limit]:
        image = load_image(sample.image)
        trace = model.trace(image, sample.prompt, model.generate(image, sample.prompt))
        scores = base_scores(trace, model)
        eci_weights = scores.relevance * scores.before * ~scores.same_word
        rho = arc_correlation(trace, model, args.arc_k, args.arc_p)
        arc_weights = eci_weights * (1 - rho)
        rho_values += rho[scores.before & ~scores.same_word].tolist()
        maps = scores.answer_maps
        eci = remove_interference(maps, scores.context_maps, eci_weights)
        arc = remove_interference(maps, scores.context_maps, arc_weights)
        for t in range(maps.shape[0]):
            if eci_weights[t].sum() == 0 or maps[t].norm() == 0:
                continue
            shift = eci_weights[t] / eci_weights[t].sum() - arc_weights[t] / arc_weights[t].sum()
            moved.append(0.5 * shift.abs().sum().item())
            removed_eci.append(((maps[t] - eci[t]).norm() / maps[t].norm()).item())
            removed_arc.append(((maps[t] - arc[t]).norm() / maps[t].norm()).item())
            arc_vs_eci.append(((arc[t] - eci[t]).norm() / eci[t].norm().clamp_min(1e-12)).item())
    print(json.dumps({
        "tokens": len(moved),
        "rho": quantiles(rho_values),
        "mixture moved by ARC (total variation)": quantiles(moved),
        "map removed by ECI ||m - eci|| / ||m||": quantiles(removed_eci),
        "map removed by ARC ||m - arc|| / ||m||": quantiles(removed_arc),
        "ARC vs ECI map ||arc - eci|| / ||eci||": quantiles(arc_vs_eci),
    }, indent=1))


if __name__ == "__main__":
    main()

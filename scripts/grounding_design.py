"""How the grounding score was designed (docs/RESULTS.md, "Hallucination"), on validation scenes only.

For every object noun of the bundled model's greedy captions, at input scales 1.0 and 0.5, this
computes candidate features -- the token's probability at scale 1 and in more detailed views (the
largest up to 2x the model takes, and 1.5x and 2x each), the raw logit-lens map's peak, concentration
and agreement across MSEA's scales (1, 0.75), the share of the token's evidence from the image rather
than the earlier text, the last layer's attention mass on the image -- and prints how well each finds
hallucinated nouns (AUROC of a low value), the AUROC of the detail-view rule for each
`MIN_DETAIL_SCALE` and for each fixed detail scale, and F1 of the flag for each threshold.

    mllm-explain data synth --split val --seed 1 --n 300 --out val1
    python scripts/grounding_design.py val1 --out design.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from mllm_explain.adapters import load_model
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import load_samples
from mllm_explain.evaluation.hallucination import attention_mass
from mllm_explain.evaluation.metrics import object_mentions
from mllm_explain.evaluation.words import classify_words
from mllm_explain.explanation import group_words, word_starts
from mllm_explain.grounding import MAX_DETAIL_SCALE
from mllm_explain.methods.base import base_scores, common_grid, split_views

FIXED_DETAIL_SCALES = (1.5, 2.0)  # a detail view at one scale for every image, where the model takes it


def features(model, image: Image.Image, prompt: str, present: set[int], vocabulary: dict[str, int]) -> list[dict]:
    ids = model.generate(image, prompt)
    text = model.tokenizer.decode(ids, skip_special_tokens=True).strip()
    if not text:
        return []
    ids = model.tokenize_answer(text)
    word_index = word_starts(model.token_texts(ids))
    mentions = object_mentions(classify_words(group_words(model.token_texts(ids), word_index), vocabulary), word_index)
    if not mentions:
        return []
    traces = [model.trace(image, prompt, ids, scale=1.0, attention=True), model.trace(image, prompt, ids, scale=0.75)]
    scores = [base_scores(trace, model) for trace in traces]
    raw = common_grid([split_views(s.answer_maps, t.views) for s, t in zip(scores, traces)], traces)[0].flatten(2)
    largest = model.max_scale(image)  # within the processor's own range: the detail views of the first rule

    def takes(scale: float) -> bool:
        try:
            model.check_scale(image, scale)
        except UserError:
            return False
        return scale > 1

    detailed = {scale: (model.answer_probabilities([image], prompt, ids, scale=scale)[0].numpy()
                        if takes(scale) else scores[0].token_probability.numpy())
                for scale in {min(MAX_DETAIL_SCALE, largest), *FIXED_DETAIL_SCALES}}
    attention = attention_mass(traces[0])
    rows = []
    for mention in mentions:
        t, first = mention.token, scores[0]
        usable = first.before[t] & ~first.own[t]
        text_evidence = float(first.relevance[t][usable].max()) if usable.any() else 0.0
        peak = float(raw[0, t].max())
        share = raw[0, t] / raw[0, t].sum().clamp_min(1e-12)
        agreement = float(torch.corrcoef(raw[:, t])[0, 1].nan_to_num(0.0))
        rows.append({"hallucinated": mention.category not in present, "largest_scale": largest,
                     "probability": float(first.token_probability[t]),
                     "detail_probability": float(detailed[min(MAX_DETAIL_SCALE, largest)][t]),
                     **{f"probability_{scale:g}": float(detailed[scale][t]) for scale in FIXED_DETAIL_SCALES},
                     "probability_075": float(scores[1].token_probability[t]), "peak": peak,
                     "concentration": float(share.max()), "image_share": peak / (peak + text_evidence + 1e-12),
                     "scale_agreement": agreement, "attention_mass": float(attention[t])})
    return rows


def collect(data: Path, input_scale: float) -> list[dict]:
    model = load_model(None)
    samples = load_samples(data, "synthetic")
    vocabulary = {name: cid for sample in samples for name, cid in sample.categories.items()}
    rows = []
    for sample in samples:
        image, mask = Image.open(sample.image).convert("RGB"), sample.mask()
        if input_scale != 1.0:
            size = (max(1, round(image.width * input_scale)), max(1, round(image.height * input_scale)))
            image = image.resize(size, Image.BICUBIC)
            mask = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
        rows += features(model, image, sample.prompt, set(np.unique(mask).tolist()), vocabulary)
    return rows


def report(rows_by_scale: dict[str, list[dict]]) -> None:
    pooled_y, pooled_g = [], []
    for scale, rows in rows_by_scale.items():
        y = np.array([r["hallucinated"] for r in rows])
        value = lambda key, rows=rows: np.array([r[key] for r in rows])  # noqa: E731
        print(f"input scale {scale}: {len(y)} nouns, {y.mean():.3f} hallucinated")
        for key in ("probability", "probability_075", "detail_probability",
                    *(f"probability_{s:g}" for s in FIXED_DETAIL_SCALES), "peak", "concentration", "image_share",
                    "scale_agreement", "attention_mass"):
            print(f"  {key:20s} AUROC {roc_auc_score(y, -value(key)):.3f}")
        for scale in FIXED_DETAIL_SCALES:
            fixed = np.minimum(value("probability"), value(f"probability_{scale:g}"))
            print(f"  min(p_1, p_{scale:g}) for every noun: AUROC {roc_auc_score(y, -fixed):.3f}")
        rule = np.where(value("largest_scale") >= 1.5, np.minimum(value("probability"), value("probability_2")),
                        value("probability"))
        print(f"  min(p_1, p_2) where s* >= 1.5, else p_1 (the rule): AUROC {roc_auc_score(y, -rule):.3f}")
        largest = np.minimum(value("largest_scale"), MAX_DETAIL_SCALE)
        both = np.minimum(value("probability"), value("detail_probability"))
        for minimum in (1.0, 1.25, 1.5, 1.75, 2.0):
            grounding = np.where(largest >= minimum, both, value("probability"))
            print(f"  min(p_1, p_s*) when s* >= {minimum}: AUROC {roc_auc_score(y, -grounding):.3f} "
                  f"(detail view for {np.mean(largest >= minimum):.2f} of nouns)")
        pooled_y.append(y)
        pooled_g.append(rule)
    y, g = np.concatenate(pooled_y), np.concatenate(pooled_g)
    print("flag = grounding (the rule) < threshold, both input scales pooled:")
    for threshold in np.arange(0.05, 0.96, 0.05):
        flag = g < threshold
        precision, recall = (flag & y).sum() / max(flag.sum(), 1), (flag & y).sum() / y.sum()
        print(f"  {threshold:.2f}: precision {precision:.3f} recall {recall:.3f} "
              f"F1 {2 * precision * recall / max(precision + recall, 1e-12):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="validation scenes (mllm-explain data synth --split val)")
    parser.add_argument("--out", type=Path, help="write the per-noun features here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {str(scale): collect(args.data, scale) for scale in (1.0, 0.5)}
    if args.out:
        args.out.write_text(json.dumps(rows))
    report(rows)


if __name__ == "__main__":
    main()

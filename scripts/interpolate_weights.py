"""Interpolate two checkpoints of one architecture: weights (1 - alpha) * base + alpha * tuned.

    python scripts/interpolate_weights.py BASE TUNED --alpha 0.8 --out OUT

Weight-space interpolation between a model and its fine-tuned continuation (WiSE-FT, Wortsman et
al., CVPR 2022) keeps part of what the base did well while it keeps most of what the continuation
learnt; the bundled model is run 4 and run 12 mixed this way (docs/MODEL.md). OUT gets TUNED's
configuration, processor and training log, the mixed `model.safetensors`, and `interpolation.json`
naming both parents by SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, the parents' identity in interpolation.json."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def interpolate(base: Path, tuned: Path, alpha: float, out: Path) -> Path:
    """Write the checkpoint (1 - alpha) * base + alpha * tuned to `out` (atomically) and return it."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base_weights, tuned_weights = load_file(base / WEIGHTS), load_file(tuned / WEIGHTS)
    if base_weights.keys() != tuned_weights.keys() or any(
            base_weights[name].shape != tuned_weights[name].shape for name in base_weights):
        raise ValueError(f"{base} and {tuned} are not one architecture")
    mixed = {name: ((1 - alpha) * base_weights[name].double() + alpha * tuned_weights[name].double())
             .to(tuned_weights[name].dtype) for name in tuned_weights}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    for path in tuned.iterdir():
        if path.is_file() and not path.name.startswith(".") and path.name not in (WEIGHTS, "interpolation.json"):
            shutil.copy(path, staging / path.name)
    save_file(mixed, staging / WEIGHTS, metadata={"format": "pt"})
    provenance = {"alpha": alpha, "base": str(base), "base_sha256": sha256(base / WEIGHTS),
                  "tuned": str(tuned), "tuned_sha256": sha256(tuned / WEIGHTS)}
    (staging / "interpolation.json").write_text(json.dumps(provenance, indent=1) + "\n")
    staging.chmod(0o755)
    for path in staging.iterdir():
        path.chmod(0o644)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="checkpoint folder weighted 1 - alpha")
    parser.add_argument("tuned", type=Path, help="checkpoint folder weighted alpha (its config is kept)")
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        print(interpolate(args.base, args.tuned, args.alpha, args.out))
    except (ValueError, OSError) as exc:  # a bad alpha, other architectures, a folder without weights
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()

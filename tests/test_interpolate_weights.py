"""scripts/interpolate_weights.py: the mixed checkpoint is the weighted sum of its parents, loads as the
same model, and names its parents; the bundled model's record of it is consistent."""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import interpolate_weights  # noqa: E402

from mllm_explain.adapters import BUNDLED_MODEL  # noqa: E402


def _checkpoint(folder: Path, scale: float, shape=(3, 2)) -> Path:
    folder.mkdir()
    save_file({"a.weight": torch.full(shape, scale), "b.bias": torch.arange(2.0) * scale}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"scale": scale}))
    (folder / ".lock").write_text("")
    return folder


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.8, 1.0])
def test_mix_is_the_weighted_sum_and_keeps_the_tuned_config(tmp_path, alpha):
    base, tuned = _checkpoint(tmp_path / "base", 1.0), _checkpoint(tmp_path / "tuned", 5.0)
    out = interpolate_weights.interpolate(base, tuned, alpha, tmp_path / "mix")
    mixed = load_file(out / "model.safetensors")
    assert torch.allclose(mixed["a.weight"], torch.full((3, 2), 1 + 4 * alpha))
    assert torch.allclose(mixed["b.bias"], torch.arange(2.0) * (1 + 4 * alpha))
    assert json.loads((out / "config.json").read_text()) == {"scale": 5.0}
    assert not (out / ".lock").exists()
    provenance = json.loads((out / "interpolation.json").read_text())
    assert provenance["alpha"] == alpha
    assert provenance["tuned_sha256"] == interpolate_weights.sha256(tuned / "model.safetensors")


def test_other_architectures_and_bad_alpha_are_refused(tmp_path):
    base, other = _checkpoint(tmp_path / "base", 1.0), _checkpoint(tmp_path / "other", 1.0, shape=(2, 2))
    with pytest.raises(ValueError, match="not one architecture"):
        interpolate_weights.interpolate(base, other, 0.5, tmp_path / "mix")
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights.interpolate(base, base, 1.5, tmp_path / "mix")
    assert not (tmp_path / "mix").exists()


def test_bundled_model_records_its_interpolation():
    provenance = json.loads((Path(BUNDLED_MODEL) / "interpolation.json").read_text())
    assert 0 < provenance["alpha"] < 1
    mixed = interpolate_weights.sha256(Path(BUNDLED_MODEL) / "model.safetensors")
    assert len({provenance["base_sha256"], provenance["tuned_sha256"], mixed}) == 3

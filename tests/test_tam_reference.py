"""Known answer: our `tam` against the maps TAM's reference code (xmed-lab/TAM) computed on the
bundled model (tests/fixtures/tam_reference, made by scripts/tam_reference_fixture.py)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mllm_explain import get_method

FIXTURE = Path(__file__).parent / "fixtures" / "tam_reference"
META = json.loads((FIXTURE / "reference.json").read_text())
REFERENCE = np.load(FIXTURE / "reference_maps.npz")
IMAGES = sorted(META["images"])


def _image(name: str) -> Image.Image:
    path = FIXTURE / name if (FIXTURE / name).exists() else Path(__file__).parents[1] / "examples" / name
    return Image.open(path).convert("RGB")


@pytest.fixture(scope="module")
def traces(bundled):
    weights = Path(bundled.name_or_path) / "model.safetensors"
    if hashlib.sha256(weights.read_bytes()).hexdigest() != META["model_sha256"]:
        pytest.fail("the bundled weights changed: regenerate the fixture with scripts/tam_reference_fixture.py")
    return {name: bundled.trace(_image(name), META["prompt"], META["images"][name]["answer_ids"]) for name in IMAGES}


def _uint8_maps(model, trace, **options) -> np.ndarray:
    """(T, gh, gw) maps at the reference's evaluation scale: floor(map * 255)."""
    return (get_method("tam", **options).attribute(model, [trace]).maps.numpy() * 255).astype(np.uint8).astype(int)


@pytest.mark.parametrize("name", IMAGES)
def test_reference_quirks_reproduce_the_reference_on_every_round_after_the_first(bundled, traces, name):
    ours = _uint8_maps(bundled, traces[name], reference_quirks=True)
    reference = REFERENCE[name].astype(int)
    assert ours.shape == reference.shape
    assert np.abs(ours[1:] - reference[1:]).max() <= 1


@pytest.mark.parametrize("name", IMAGES)
def test_default_differs_from_the_reference_only_where_its_two_quirk_slots_act(bundled, traces, name):
    trace, tam = traces[name], get_method("tam")
    scores = tam.base_scores(trace, bundled)
    weights = tam.context_weights(trace, scores, bundled)  # (T, C): prompt slots, then answer slots
    quirk_slots = weights[:, [0, len(trace.prompt_positions)]].sum(1)
    difference = np.abs(_uint8_maps(bundled, trace) - REFERENCE[name].astype(int)).reshape(len(weights), -1).max(1)
    untouched = (quirk_slots == 0).numpy()
    untouched[0] = False  # round 0: the reference returns another token's map (not reproduced)
    assert untouched.sum() >= 2 and (~untouched[1:]).sum() >= 2
    assert difference[untouched].max() <= 1
    assert difference[1:][~untouched[1:]].max() > 1  # the quirks do change maps where they act


@pytest.mark.parametrize("name", IMAGES)
def test_earlier_position_pairing_is_not_the_reference(bundled, traces, name):
    difference = np.abs(_uint8_maps(bundled, traces[name], eci_pairing="position", reference_quirks=True)
                        - REFERENCE[name].astype(int))
    assert (difference[1:] > 1).mean() > 0.2


def test_round_pairing_never_weights_the_position_that_predicts_the_token(traces, bundled):
    trace = traces[IMAGES[0]]
    tam = get_method("tam")
    scores = tam.base_scores(trace, bundled)
    for t, position in enumerate((trace.answer_positions - 1).tolist()):
        slots = scores.slot_positions[scores.before[t]].tolist()
        assert position not in slots  # t's self score is never context
        if t > 0:
            assert position - 1 in slots  # the previous answer token, read where it was predicted

"""The full Omni checkpoints (`qwen2_5_omni`, `qwen3_omni_moe`): their text answer is the thinker's, so `load_model`
loads the thinker alone from the full folder (its `thinker_config`, its weights under `thinker.`), with no talker.
The naive reading, the image-text-to-text class of the folder's own config, does not exist."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image
from transformers import AutoModelForImageTextToText

from mllm_explain import load_model


@pytest.mark.parametrize("name", ["qwen2_5_omni", "qwen3_omni_moe"])
def test_the_full_checkpoint_explains_its_thinker_alone(name, tmp_path):
    adapter = build_adapter(name)
    assert adapter.model is adapter.full_model.thinker
    adapter.full_model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, device="cpu", dtype=torch.float32)
    assert loaded.model.config.model_type == f"{name}_thinker" and not hasattr(loaded.model, "talker")
    expected = adapter.model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in loaded.model.state_dict().items())
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    assert torch.allclose(loaded.trace(make_image(WIDE), PROMPT, answer).hidden, trace.hidden, atol=1e-5)

    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        AutoModelForImageTextToText.from_pretrained(tmp_path)

"""The bundled model loads offline through the standard transformers entry points and captions."""

import re

from PIL import Image

from mllm_explain.adapters import BUNDLED_MODEL
from mllm_explain.data.synth import CATEGORIES, PLURALS


def test_auto_classes_load_the_bundled_checkpoint_offline():
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(BUNDLED_MODEL)
    processor = AutoProcessor.from_pretrained(BUNDLED_MODEL)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert type(processor).__name__ == "Qwen2VLProcessor"
    size = sum(p.stat().st_size for p in BUNDLED_MODEL.iterdir())
    assert size <= 30 * 2**20


def test_bundled_model_captions_the_example_image(bundled):
    image = Image.open("examples/scene.png").convert("RGB")
    caption = bundled.tokenizer.decode(bundled.generate(image, "Describe this image."), skip_special_tokens=True)
    nouns = set(CATEGORIES) | set(PLURALS.values())
    assert caption.startswith("There ") and caption.endswith(".")
    assert nouns & set(re.findall(r"[a-z]+", caption))

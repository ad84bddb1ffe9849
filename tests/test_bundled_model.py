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


def test_token_texts_show_characters_split_over_byte_tokens(bundled):
    text = "There is a 赤い ring 🐱."
    ids = bundled.tokenize_answer(text)
    assert any("\ufffd" in bundled.token_text(i) for i in ids)  # the tokeniser does split these characters
    texts = bundled.token_texts(ids)
    assert "".join(texts) == text and not any("\ufffd" in t for t in texts)
    assert "赤" in texts and "い" in texts and "🐱" in texts and "" in texts
    cut = ids[:texts.index("赤")]  # bytes of the first character without its last: never a whole character
    assert bundled.token_texts(cut)[-1].endswith("\ufffd")


def test_pointing_reads_the_maps_of_a_downscaled_scene_at_the_mask_size(bundled):
    from mllm_explain.data.synth import iter_scenes
    from mllm_explain.evaluation.pointing import pointing_game

    scenes = list(iter_scenes(3, 0, "val"))
    full, half = pointing_game(bundled, scenes), pointing_game(bundled, scenes, input_scale=0.5)
    assert half["input_scale"] == 0.5 and half["n_nouns"] == full["n_nouns"] > 0
    assert half["random_pixel"] == full["random_pixel"] and 0 <= half["pointing"] <= 1

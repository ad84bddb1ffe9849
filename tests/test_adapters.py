"""The family adapters on tiny, randomly initialised models of the real transformers classes with their
real processor classes, all built here from config objects (nothing is downloaded): registration,
where a trace puts vision / prompt / answer tokens, teacher-forced states against `generate`, attention
rows, and how input scale changes the grid or (letterboxed encoders) the image box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLForConditionalGeneration,
)
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from mllm_explain.adapters import ADAPTERS, ModelAdapter, load_model
from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.internvl import InternVLAdapter
from mllm_explain.adapters.llava import LlavaAdapter
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.errors import UserError
from mllm_explain.training.build import CHAT_TEMPLATE, build_config, build_processor, build_tokenizer

CORPUS = [
    "what is in the picture? a red square on a blue field.",
    "describe the image: two green circles and a small yellow triangle.",
    "the answer is a cat, a dog, or a bird sitting next to the window.",
] * 4
PROMPT = "what is in the picture?"
ANSWER = " a red square"
WIDE, TALL = (112, 84), (84, 112)
N_NEW = 5

LLAVA_TEMPLATE = (  # LLaVA-1.5: "USER: <image>\n{prompt} ASSISTANT:"
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
INTERNVL_TEMPLATE = (  # InternVL-hf: ChatML with "<IMG_CONTEXT>\n" where the image goes
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(special: list[str], named: dict[str, str], template: str, **tokens: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer as `build_tokenizer` makes it, with another family's special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=None, chat_template=template,
                                   model_max_length=4096, extra_special_tokens=named, **tokens)


TINY_QWEN = dict(text_hidden=64, text_layers=2, vision_dim=32, vision_layers=1)


def _qwen2_vl():
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    config = build_config(tokenizer, **TINY_QWEN)
    return Qwen2VLForConditionalGeneration(config), build_processor(tokenizer)


def _qwen2_5_vl():
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    parts = build_processor(tokenizer)
    processor = Qwen2_5_VLProcessor(image_processor=parts.image_processor, tokenizer=tokenizer,
                                    video_processor=parts.video_processor, chat_template=CHAT_TEMPLATE)
    qwen2 = build_config(tokenizer, **TINY_QWEN)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, out_hidden_size=64,
                  patch_size=14, spatial_merge_size=2, window_size=56, fullatt_block_indexes=[0])
    config = Qwen2_5_VLConfig(
        text_config=qwen2.text_config.to_dict(), vision_config=vision, tie_word_embeddings=True,
        **{key: getattr(qwen2, key) for key in ("image_token_id", "video_token_id", "vision_start_token_id",
                                                "vision_end_token_id", "bos_token_id", "eos_token_id",
                                                "pad_token_id")},
    )
    return Qwen2_5_VLForConditionalGeneration(config), processor


def _llava():
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"], {"image_token": "<image>"}, LLAVA_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=48, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    return LlavaForConditionalGeneration(config), processor


def _internvl():
    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()], named,
                           INTERNVL_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    pixels = dict(size={"height": 64, "width": 64}, image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD)
    processor = InternVLProcessor(image_processor=GotOcr2ImageProcessor(**pixels), tokenizer=tokenizer,
                                  video_processor=InternVLVideoProcessor(**pixels), image_seq_length=16,
                                  chat_template=INTERNVL_TEMPLATE)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=64, patch_size=8)
    text = dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    config = InternVLConfig(vision_config=vision, text_config=text, image_token_id=ids("<IMG_CONTEXT>"),
                            image_seq_length=16, downsample_ratio=0.5)
    return InternVLForConditionalGeneration(config), processor


@dataclass
class Family:
    build: Callable[[], tuple[torch.nn.Module, object]]
    adapter_cls: type[ModelAdapter]
    grid: tuple[int, int]  # at scale 1 for the WIDE image, from the configs above


FAMILIES = {
    "qwen2_vl": Family(_qwen2_vl, Qwen2VLAdapter, (3, 4)),  # 84x112 px / 14 px patches / 2x2 merge
    "qwen2_5_vl": Family(_qwen2_5_vl, Qwen2VLAdapter, (3, 4)),
    "llava": Family(_llava, LlavaAdapter, (6, 6)),  # 48 px / 8 px patches, CLS dropped
    "internvl": Family(_internvl, InternVLAdapter, (4, 4)),  # 64 px / 8 px patches * 0.5 pixel shuffle
}


def _image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _build(name: str) -> ModelAdapter:
    torch.manual_seed(0)
    model, processor = FAMILIES[name].build()
    return ADAPTERS[model.config.model_type](model.float(), processor)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request) -> tuple[str, ModelAdapter]:
    return request.param, _build(request.param)


def _foreign_hooks(model: torch.nn.Module) -> list[str]:
    """Forward (pre-)hooks on any module other than the output-recording ones transformers installs itself."""
    return [f"{name}: {hook.__qualname__}" for name, module in model.named_modules()
            for hook in [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
            if "output_capturing_hook" not in hook.__qualname__]


def test_registry_maps_model_type_to_family_adapter(family):
    name, adapter = family
    assert adapter.model.config.model_type == name
    assert ADAPTERS[name] is FAMILIES[name].adapter_cls
    assert type(adapter) is FAMILIES[name].adapter_cls


def test_load_model_from_saved_directory(tmp_path):
    adapter = _build("llava")
    adapter.model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is LlavaAdapter and type(loaded.model) is LlavaForConditionalGeneration
    answer = adapter.tokenize_answer(ANSWER)
    expected, got = adapter.trace(_image(WIDE), PROMPT, answer), loaded.trace(_image(WIDE), PROMPT, answer)
    assert torch.equal(got.input_ids, expected.input_ids)
    assert torch.allclose(got.hidden, expected.hidden, atol=1e-5)


def test_trace_positions(family):
    name, adapter = family
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(_image(WIDE), PROMPT, answer)
    gh, gw = trace.grid
    assert trace.grid == FAMILIES[name].grid
    vision = trace.vision_positions
    assert len(vision) == gh * gw
    assert torch.equal(vision, torch.arange(int(vision[0]), int(vision[0]) + gh * gw))
    assert adapter.tokenizer.decode(trace.input_ids[trace.prompt_positions]) == PROMPT
    length = len(trace.input_ids)
    assert torch.equal(trace.answer_positions, torch.arange(length - len(answer), length))
    assert trace.answer_ids.tolist() == answer
    assert trace.hidden.shape == (length, adapter.model.config.text_config.hidden_size)
    assert trace.hidden.dtype == torch.float32


def test_teacher_forced_states_match_generate(family):
    """`generate`'s last hidden state (final-norm output in all four families, as transformers ties it to
    `last_hidden_state`) at the position that predicted each new token equals the teacher-forced trace."""
    _, adapter = family
    image = _image(WIDE)
    inputs = adapter.encode(adapter.scaled_image(image, 1.0)[0], PROMPT)  # the view `trace` feeds at scale 1
    out = adapter.model.generate(**inputs, max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False,
                                 output_hidden_states=True, return_dict_in_generate=True,
                                 suppress_tokens=adapter.tokenizer.all_special_ids)
    answer = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    assert len(answer) == N_NEW
    greedy = adapter.generate(image, PROMPT, max_new_tokens=N_NEW)  # stops at the first special token
    assert greedy == answer[:len(greedy)]
    trace = adapter.trace(image, PROMPT, answer)
    generated = torch.stack([step[-1][0, -1] for step in out.hidden_states])
    assert torch.allclose(trace.hidden[trace.answer_positions - 1], generated, atol=1e-4)


def test_attention_rows_gradients_and_no_hooks_left(family):
    _, adapter = family
    answer = adapter.tokenize_answer(ANSWER)
    implementation = adapter.model.config._attn_implementation
    trace = adapter.trace(_image(WIDE), PROMPT, answer, attention=True)
    assert trace.attention.shape == (len(answer), len(trace.input_ids))
    assert torch.allclose(trace.attention.sum(-1), torch.ones(len(answer)), atol=1e-4)
    assert (trace.attention >= 0).all()
    assert adapter.model.config._attn_implementation == implementation
    grads, states = adapter.last_layer_gradients(trace)
    size = (len(trace.vision_positions), adapter.model.config.text_config.hidden_size)
    assert grads.shape == (len(answer), *size) and states.shape == size
    assert torch.isfinite(grads).all() and (grads.abs().sum((1, 2)) > 0).all()
    assert _foreign_hooks(adapter.model) == []


def test_scale_changes_grid_or_image_box(family):
    _, adapter = family
    answer = adapter.tokenize_answer(ANSWER)
    image = _image(WIDE)
    full, half = adapter.trace(image, PROMPT, answer), adapter.trace(image, PROMPT, answer, scale=0.5)
    if isinstance(adapter, FixedResolutionAdapter):
        assert half.grid == full.grid
        assert full.image_box == (0.125, 0.0, 0.875, 1.0)  # 112x84 letterboxed: 14 px bands above and below
        assert half.image_box == (35 / 112, 0.25, 77 / 112, 0.75)  # 56x42 centred in 112x112
        with pytest.raises(UserError, match="fixed resolution"):
            adapter.trace(image, PROMPT, answer, scale=2.0)
    else:
        assert half.grid[0] < full.grid[0] and half.grid[1] < full.grid[1]
        assert half.image_box == full.image_box == (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("name", ["llava", "internvl"])
@pytest.mark.parametrize("size, box", [(WIDE, (0.125, 0.0, 0.875, 1.0)), (TALL, (0.0, 0.125, 1.0, 0.875))])
def test_letterbox_keeps_whole_image(name, size, box):
    """The canvas is square, padded with the mean colour, and survives the processor uncropped: the
    padding normalises to ~0 in exactly the bands outside `box`."""
    adapter = _build(name)
    image = _image(size)
    canvas, got = adapter.scaled_image(image, 1.0)
    assert got == box and canvas.size == (112, 112)
    top, left, bottom, right = (round(value * 112) for value in box)
    assert canvas.crop((left, top, right, bottom)).tobytes() == image.tobytes()
    assert canvas.getpixel((0, 0)) == canvas.getpixel((111, 111)) == adapter.background
    pixels = adapter.processor.image_processor(images=[canvas], return_tensors="pt")["pixel_values"][0]
    axis, (start, stop) = (1, (box[0], box[2])) if size == WIDE else (2, (box[1], box[3]))
    profile = pixels.abs().amax(dim=tuple(dim for dim in range(3) if dim != axis))  # per row / column
    side = len(profile)
    start, stop = round(start * side), round(stop * side)  # bicubic resizing blends two lines either side
    assert (profile[:start - 2] < 0.02).all() and (profile[stop + 2:] < 0.02).all()
    assert (profile[start + 2:stop - 2] > 0.5).all()

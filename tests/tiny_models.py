"""Tiny, randomly initialised models of every supported family (real transformers model and
processor classes, built from config objects; nothing is downloaded), shared by the adapter and
method contract tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

from mllm_explain.adapters import ADAPTERS, ModelAdapter
from mllm_explain.adapters.internvl import InternVLAdapter
from mllm_explain.adapters.llava import LlavaAdapter
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.training.build import CHAT_TEMPLATE, build_config, build_processor, build_tokenizer

CORPUS = [
    "what is in the picture? a red square on a blue field.",
    "describe the image: two green circles and a small yellow triangle.",
    "the answer is a cat, a dog, or a bird sitting next to the window.",
] * 4
PROMPT = "what is in the picture?"
ANSWER = " a red square"
WIDE, TALL = (168, 126), (126, 168)
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
    "qwen2_vl": Family(_qwen2_vl, Qwen2VLAdapter, (4, 6)),  # 126x168 -> 112x168 px / 14 px patches / 2x2 merge
    "qwen2_5_vl": Family(_qwen2_5_vl, Qwen2VLAdapter, (4, 6)),
    "llava": Family(_llava, LlavaAdapter, (6, 6)),  # 48 px / 8 px patches, CLS dropped
    "internvl": Family(_internvl, InternVLAdapter, (4, 4)),  # 64 px / 8 px patches * 0.5 pixel shuffle
}


def make_image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def build_adapter(name: str) -> ModelAdapter:
    torch.manual_seed(0)
    model, processor = FAMILIES[name].build()
    return ADAPTERS[model.config.model_type](model.float(), processor)


def foreign_hooks(model: torch.nn.Module) -> list[str]:
    """Forward (pre-)hooks on any module other than the output-recording ones transformers installs itself."""
    return [f"{name}: {hook.__qualname__}" for name, module in model.named_modules()
            for hook in [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
            if "output_capturing_hook" not in hook.__qualname__]



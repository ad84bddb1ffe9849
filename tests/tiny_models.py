"""Tiny, randomly initialised models of every supported family (real transformers model and
processor classes, built from config objects; nothing is downloaded), shared by the adapter and
method contract tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    Glm4vConfig,
    Glm4vForConditionalGeneration,
    Glm4vImageProcessor,
    Glm4vProcessor,
    Glm4vVideoProcessor,
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
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeConfig,
    Qwen3VLMoeForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from mllm_explain.adapters import ADAPTERS, ModelAdapter
from mllm_explain.adapters.glm4v import Glm4vAdapter
from mllm_explain.adapters.internvl import InternVLAdapter
from mllm_explain.adapters.llava import LlavaAdapter
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.training.build import (
    CHAT_TEMPLATE,
    MAX_PIXELS,
    MIN_PIXELS,
    build_config,
    build_processor,
    build_tokenizer,
)

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
# GLM-4.1V: "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>{prompt}<|assistant|>\n"
GLM4V_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
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


def _qwen3_vl(moe: bool = False):
    """Qwen3-VL (dense, or the MoE text model with `moe`): Qwen2-VL's tokens and chat template, 16 px patches, and
    DeepStack features of the one vision layer added after the first decoder layer."""
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(patch_size=16, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen3VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [6, 5, 5],
                                 "mrope_interleaved": True},  # head_dim / 2 over (t, h, w), interleaved
                bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, decoder_sparse_step=1)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64, deepstack_visual_indexes=[0])
    config_cls, model_cls = ((Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration) if moe
                             else (Qwen3VLConfig, Qwen3VLForConditionalGeneration))
    config = config_cls(text_config=text, vision_config=vision, tie_word_embeddings=not moe,
                        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return model_cls(config), processor


def _glm4v():
    """GLM-4.1V: its own special tokens and template, 14 px patches merged 2x2 by a convolution, partial M-RoPE,
    untied LM head; the processor's pixel range counts an image twice (two frames of a temporal patch)."""
    named = {"image_token": "<|image|>", "video_token": "<|video|>"}
    special = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
               "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>", *named.values()]
    tokenizer = _tokenizer(special, named, GLM4V_TEMPLATE, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Glm4vImageProcessor(size={"shortest_edge": 2 * MIN_PIXELS, "longest_edge": 2 * MAX_PIXELS})
    processor = Glm4vProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=Glm4vVideoProcessor(), chat_template=GLM4V_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                 "mrope_section": [2, 3, 3]},  # rotary half of head_dim 32, halved, over (t, h, w)
                pad_token_id=ids("<|endoftext|>"),
                eos_token_id=[ids("<|endoftext|>"), ids("<|user|>"), ids("<|observation|>")])
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, image_size=56, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64)
    config = Glm4vConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image|>"),
                         video_token_id=ids("<|video|>"), image_start_token_id=ids("<|begin_of_image|>"),
                         image_end_token_id=ids("<|end_of_image|>"), video_start_token_id=ids("<|begin_of_video|>"),
                         video_end_token_id=ids("<|end_of_video|>"))
    return Glm4vForConditionalGeneration(config), processor


@dataclass
class Family:
    build: Callable[[], tuple[torch.nn.Module, object]]
    adapter_cls: type[ModelAdapter]
    grid: tuple[int, int]  # at scale 1 for the WIDE image, from the configs above


FAMILIES = {
    "qwen2_vl": Family(_qwen2_vl, Qwen2VLAdapter, (4, 6)),  # 126x168 -> 112x168 px / 14 px patches / 2x2 merge
    "qwen2_5_vl": Family(_qwen2_5_vl, Qwen2VLAdapter, (4, 6)),
    "qwen3_vl": Family(_qwen3_vl, Qwen2VLAdapter, (4, 5)),  # 126x168 -> 128x160 px / 16 px patches / 2x2 merge
    "qwen3_vl_moe": Family(partial(_qwen3_vl, moe=True), Qwen2VLAdapter, (4, 5)),
    "glm4v": Family(_glm4v, Glm4vAdapter, (4, 6)),  # as Qwen2-VL: 112x168 px / 14 px patches / 2x2 merge
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



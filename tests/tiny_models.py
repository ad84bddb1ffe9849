"""Tiny, randomly initialised models of every supported family (real transformers model and
processor classes, built from config objects; nothing is downloaded), shared by the adapter and
method contract tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    Gemma2Config,
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3ImageProcessor,
    Gemma3Processor,
    Gemma3TextConfig,
    Glm4vConfig,
    Glm4vForConditionalGeneration,
    Glm4vImageProcessor,
    Glm4vProcessor,
    Glm4vVideoProcessor,
    GotOcr2ImageProcessor,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessor,
    Idefics3Processor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessor,
    LlavaNextProcessor,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
    LlavaProcessor,
    Mistral3Config,
    Mistral3ForConditionalGeneration,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    PixtralImageProcessor,
    PixtralProcessor,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Config,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeConfig,
    Qwen3VLMoeForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
    SmolVLMImageProcessor,
    SmolVLMProcessor,
    SmolVLMVideoProcessor,
)
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE as SMOLVLM_TEMPLATE

from mllm_explain.adapters import ADAPTERS, ModelAdapter
from mllm_explain.adapters.apertus1p5 import Apertus1p5Adapter
from mllm_explain.adapters.chameleon import ChameleonAdapter
from mllm_explain.adapters.deepseek_vl import DeepseekVLAdapter, DeepseekVLHybridAdapter, JanusAdapter
from mllm_explain.adapters.emu3 import Emu3Adapter
from mllm_explain.adapters.gemma3 import Gemma3Adapter, Gemma3nAdapter
from mllm_explain.adapters.gemma4 import Gemma4Adapter
from mllm_explain.adapters.git import GitAdapter
from mllm_explain.adapters.glm4v import Cosmos3EdgeAdapter, Glm4vAdapter, GlmgaAdapter
from mllm_explain.adapters.glm5_next import Glm5NextAdapter
from mllm_explain.adapters.got_ocr2 import GotOcr2Adapter, PPChart2TableAdapter
from mllm_explain.adapters.hunyuan_vl import HunYuanVLAdapter
from mllm_explain.adapters.idefics3 import Idefics3Adapter, SmolVLMAdapter
from mllm_explain.adapters.inkling2 import Inkling2Adapter, InklingAdapter
from mllm_explain.adapters.internvl import (
    AyaVisionAdapter,
    Cohere2VisionAdapter,
    GraniteDoclingAdapter,
    InternVLAdapter,
)
from mllm_explain.adapters.kimi_k25 import KimiK25Adapter
from mllm_explain.adapters.lfm2_vl import Lfm2VlAdapter
from mllm_explain.adapters.llava import LlavaAdapter, VideoLlavaAdapter, VipLlavaAdapter
from mllm_explain.adapters.llava_next import Granite4VisionAdapter, LlavaNextAdapter, LlavaOnevisionAdapter
from mllm_explain.adapters.minicpmv import MiniCPMVAdapter
from mllm_explain.adapters.mistral3 import FuyuAdapter, LightOnOcrAdapter, Mistral3Adapter
from mllm_explain.adapters.molmo2 import Molmo2Adapter
from mllm_explain.adapters.muse_glimmer import MuseGlimmerAdapter
from mllm_explain.adapters.nemotron_h_omni import NemotronHOmniAdapter
from mllm_explain.adapters.ovis2 import Ovis2Adapter
from mllm_explain.adapters.paligemma import PaliGemmaAdapter
from mllm_explain.adapters.perception_lm import PerceptionLMAdapter
from mllm_explain.adapters.qwen2_vl import (
    CohereCompassAdapter,
    HyperCLOVAXVisionV2Adapter,
    Lfm3VlAdapter,
    PaddleOCRVLAdapter,
    Qwen2VLAdapter,
    Qwen4ExpAdapter,
)
from mllm_explain.adapters.step3p7 import Step3p7Adapter
from mllm_explain.adapters.stitched_hd import Phi4MultimodalAdapter, UnlimitedOcrAdapter
from mllm_explain.adapters.video_llama_3 import VideoLlama3Adapter
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
# llava-hf/LLaVA-NeXT-Video-7B-hf: LLaVA-1.5's, the images as "<image>\n", then the videos as "<video>\n"
LLAVA_NEXT_VIDEO_TEMPLATE = LLAVA_TEMPLATE.replace("{% elif content['type'] == 'text' %}",
                                                   "{% elif content['type'] == 'video' %}<video>\n"
                                                   "{% elif content['type'] == 'text' %}")
INTERNVL_TEMPLATE = (  # InternVL-hf: ChatML with "<IMG_CONTEXT>\n" where the image goes
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# InternVL3-hf's own: and "<video>\n" where a video goes (the processor writes its frames)
INTERNVL_VIDEO_TEMPLATE = INTERNVL_TEMPLATE.replace("{% elif content['type'] == 'text' %}",
                                                   "{% elif content['type'] == 'video' %}<video>\n"
                                                   "{% elif content['type'] == 'text' %}")
# GLM-4.1V: "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>{prompt}<|assistant|>\n"; a video
# "<|begin_of_video|><|video|><|end_of_video|>" in place of the image (its processor writes the frames)
GLM4V_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif content['type'] == 'video' %}<|begin_of_video|><|video|><|end_of_video|>"
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


def internvl_processor(tile: int, tokens_per_tile: int) -> InternVLProcessor:
    """InternVL-hf's processor (its special tokens, ChatML template, tiling as shipped) for `tile` px tiles of
    `tokens_per_tile` tokens."""
    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()], named,
                           INTERNVL_VIDEO_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    pixels = dict(size={"height": tile, "width": tile}, image_mean=IMAGENET_DEFAULT_MEAN,
                  image_std=IMAGENET_DEFAULT_STD)
    return InternVLProcessor(image_processor=GotOcr2ImageProcessor(**pixels), tokenizer=tokenizer,
                             video_processor=InternVLVideoProcessor(**pixels), image_seq_length=tokens_per_tile,
                             chat_template=INTERNVL_VIDEO_TEMPLATE)


def _internvl():
    processor = internvl_processor(64, 16)
    tokenizer = processor.tokenizer
    ids = tokenizer.convert_tokens_to_ids
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


def scale_projector(path: str, factor: float) -> Callable[[torch.nn.Module], None]:
    """Multiply the last linear (or convolution) layer of the vision-to-text projector at `path` (under `model.model`)
    by `factor`: random decoder layers otherwise drown the image tokens' own signal under what they mix in from other
    tokens, and the layout tests could not see where an image change lands."""

    def sharpen(model: torch.nn.Module) -> None:
        layers = (torch.nn.Linear, torch.nn.Conv2d)  # Hy4's ends in a 1x1 convolution
        last = [m for m in model.model.get_submodule(path).modules() if isinstance(m, layers)][-1]
        with torch.no_grad():
            last.weight.mul_(factor)
            if last.bias is not None:
                last.bias.mul_(factor)

    return sharpen


def scale_norm(path: str, factor: float) -> Callable[[torch.nn.Module], None]:
    """Multiply the weight of the norm at `path` (under `model.model`) that ends the vision-to-text projector by
    `factor`: a projector that ends in a norm undoes any scaling of its layers, so its weight sets the scale."""

    def sharpen(model: torch.nn.Module) -> None:
        with torch.no_grad():
            model.model.get_submodule(path).weight.mul_(factor)

    return sharpen


# Mistral Small 3.1: "<s>[SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]" then the content blocks in order ("[IMG]" for an
# image), "[/INST]"; an assistant turn is its text and "</s>" (the checkpoint's default system prompt, shortened).
MISTRAL3_TEMPLATE = (
    "{{ bos_token }}[SYSTEM_PROMPT]You are a helpful assistant.[/SYSTEM_PROMPT]"
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST]"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}[IMG]"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}[/INST]"
    "{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] if message['content'] is string else message['content'][0]['text'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
)
# Tekken's first special tokens, at their ids (0..13: [IMG] 10, <pad> 11, [IMG_BREAK] 12, [IMG_END] 13)
MISTRAL3_SPECIAL = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"]
MISTRAL3_LONGEST_EDGE = 224  # real: 1540 (= vision image_size, 110 patches of 14 px: the encoder's 2-D RoPE table)


def _mistral3():
    """Mistral 3 (Mistral Small 3.1 layout): a Pixtral encoder, 14 px patches merged 2x2, [IMG] rows ended by
    [IMG_BREAK] / [IMG_END]; a longest edge of 224 px instead of 1540."""
    tokenizer = _tokenizer(MISTRAL3_SPECIAL, {"image_token": "[IMG]"}, MISTRAL3_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = PixtralImageProcessor(size={"longest_edge": MISTRAL3_LONGEST_EDGE}, patch_size=14)
    processor = PixtralProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                 spatial_merge_size=2, chat_template=MISTRAL3_TEMPLATE)
    vision = dict(model_type="pixtral", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, image_size=MISTRAL3_LONGEST_EDGE, patch_size=14)
    text = dict(model_type="mistral", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, sliding_window=None, bos_token_id=ids("<s>"), eos_token_id=ids("</s>"),
                pad_token_id=ids("<pad>"))
    config = Mistral3Config(vision_config=vision, text_config=text, image_token_index=ids("[IMG]"),
                            spatial_merge_size=2, tie_word_embeddings=False)
    return Mistral3ForConditionalGeneration(config), processor


FUYU_BOUND = {"height": 180, "width": 240}  # real: 1080x1920 px; small enough that `Family.large` (300x220) shrinks


def _fuyu():
    """Fuyu: raw 30 px patches projected linearly, rows of |SPEAKER| each ended by |NEWLINE|, then <s>, the prompt and
    <0x04>; a Persimmon text model.  The tokenizer is SentencePiece-like (Unigram, Metaspace), as the processor
    assumes: it drops the "▁" that tokenizing its placeholder text starts with, so |SPEAKER|, |NEWLINE| and <0x04>
    are plain vocabulary entries, not added tokens (which would lose the first |SPEAKER| instead)."""
    from transformers import FuyuConfig, FuyuForCausalLM, FuyuImageProcessor, FuyuProcessor

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="first")])
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "|ENDOFTEXT|"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    spec = json.loads(tok.to_str())
    spec["model"]["vocab"] += [[piece, 0.0] for piece in ("|SPEAKER|", "|NEWLINE|", "<0x04>")]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), bos_token="<s>",
                                        eos_token="|ENDOFTEXT|", unk_token="<unk>", model_max_length=4096)
    ids = tokenizer.convert_tokens_to_ids
    processor = FuyuProcessor(image_processor=FuyuImageProcessor(size=FUYU_BOUND), tokenizer=tokenizer)
    text = dict(model_type="persimmon", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=4096, bos_token_id=ids("<s>"),
                eos_token_id=ids("|ENDOFTEXT|"), pad_token_id=ids("<unk>"))
    config = FuyuConfig(text_config=text, image_token_id=ids("|SPEAKER|"))
    return FuyuForCausalLM(config), processor



# llava-hf/llava-v1.6-mistral-7b-hf: "[INST] <image>\n{prompt} [/INST]" (no generation prompt of its own)
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
    "{% endif %}{% endfor %}"
)
# llava-hf/llava-onevision-qwen2-*-ov-hf: "<|im_start|>user <image>\n{prompt}<|im_end|><|im_start|>assistant\n" (the
# images, then the videos as "<video>", then the text)
LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}"
    "{% endfor %}{{ '<|im_end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
NEXT_TILE, NEXT_PATCH = 48, 8  # llava-v1.6: 336 px CLIP tiles of 14 px patches (24x24); here 6x6
# onevision: 384 px SigLIP tiles of 14 px patches, 27x27 seeing 378 px (the last 6 dropped); here 6x6 seeing 48 of 49
ONEVISION_TILE, ONEVISION_PATCH = 49, 8
MULTI_NEXT = (360, 150)  # (width, height): 1x3 tiles, columns unpadded
MULTI_ONEVISION = (400, 180)  # 3x6 tiles, grid 18x36 unpadded to 16x36 (a sliver of image cropped), shrunk to 12x27


def _llava_next() -> tuple[LlavaNextForConditionalGeneration, LlavaNextProcessor]:
    """LLaVA-NeXT (v1.6-mistral): CLIP with CLS, feature layer -2, 'default' selection (CLS dropped), the
    checkpoint's five pinpoints (1x2, 2x1, 2x2, 3x1, 1x3 tiles)."""
    tokenizer = _tokenizer(["<s>", "</s>", "<image>", "<pad>"], {"image_token": "<image>"}, LLAVA_NEXT_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    pinpoints = [[NEXT_TILE * h, NEXT_TILE * w] for h, w in [(1, 2), (2, 1), (2, 2), (3, 1), (1, 3)]]
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": NEXT_TILE},
                                              crop_size={"height": NEXT_TILE, "width": NEXT_TILE},
                                              image_grid_pinpoints=pinpoints, resample=3, do_pad=True)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=NEXT_PATCH,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=LLAVA_NEXT_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=NEXT_TILE, patch_size=NEXT_PATCH, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    config = LlavaNextConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                             image_grid_pinpoints=pinpoints, vision_feature_select_strategy="default",
                             vision_feature_layer=-2, image_seq_length=(NEXT_TILE // NEXT_PATCH) ** 2)
    return LlavaNextForConditionalGeneration(config), processor


def _llava_onevision() -> tuple[LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor]:
    """LLaVA-OneVision (qwen2-ov): SigLIP without CLS, last layer, 'full' selection, the 36 pinpoints 1x1..6x6
    tiles, anyres_max_9 (an unpadded grid over 9 tiles' worth is interpolated down)."""
    named = {"image_token": "<image>", "video_token": "<video>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()], named,
                           LLAVA_ONEVISION_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    side = ONEVISION_TILE // ONEVISION_PATCH
    pinpoints = [[ONEVISION_TILE * h, ONEVISION_TILE * w] for h in range(1, 7) for w in range(1, 7)]
    pixels = dict(size={"height": ONEVISION_TILE, "width": ONEVISION_TILE}, image_mean=[0.5] * 3,
                  image_std=[0.5] * 3, resample=3)
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=pinpoints, do_pad=True, **pixels),
        tokenizer=tokenizer, video_processor=LlavaOnevisionVideoProcessor(**pixels), num_image_tokens=side ** 2,
        vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
        chat_template=LLAVA_ONEVISION_TEMPLATE)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=ONEVISION_TILE, patch_size=ONEVISION_PATCH, vision_use_head=False)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                       bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                       pad_token_id=ids("<|endoftext|>"))
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                                  video_token_index=ids("<video>"), image_grid_pinpoints=pinpoints,
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  vision_aspect_ratio="anyres_max_9")
    return LlavaOnevisionForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_llava_next(model: torch.nn.Module, factor: float = 30.0, patches: float = 10.0) -> None:
    """Scale the projector's output so each image token's own features outweigh the random text model's mixing,
    and the encoder's patch embedding by `patches` so each patch's own pixels outweigh the random attention's
    mixing within a tile (SigLIP has no pre-layernorm: its random patch embedding is small)."""
    model.model.multi_modal_projector.linear_2.weight.mul_(factor)
    model.model.vision_tower.embeddings.patch_embedding.weight.mul_(patches)



# WIDE (168x126) at scale 1, (kind, grid, image_box): the base image squashed to one 48 px tile (6x6), then
# 2x2 tiles (96x96 canvas, the image 96x72 centred, 12 px above and below) whose 12x12 grid unpads to 10x12:
# rows 1..10 show canvas rows 8..88, the image rows 12..84 -> grid_box (4/80, 0, 76/80, 1).
EXPECTED_VIEWS_NEXT = [("overview", (6, 6), (0.0, 0.0, 1.0, 1.0)), ("tile", (10, 12), (0.0, 0.0, 1.0, 1.0))]
# WIDE (168x126): the base image squashed to one 49 px tile whose 6x6 patches see its top-left 48x48 px, then
# 3x4 tiles (147x196 canvas, the image 147x196 exactly), grid 18x24, unpadded as it is, and over 9 tiles' worth
# (ratio sqrt(432 / 324) = 1.155) so interpolated to 15x20; the tiles' patches spread evenly over them, shifted
# half a dropped pixel up and left (canvas -0.5..146.5 x -0.5..195.5), so the last half pixel is not shown.
EXPECTED_VIEWS_ONEVISION = [("overview", (6, 6), (0.0, 0.0, 48 / 49, 48 / 49)),
                            ("tile", (15, 20), (0.0, 0.0, 146.5 / 147, 195.5 / 196))]


# Idefics3-8B-Llama3: "<|begin_of_text|>User:<image>{prompt}<end_of_utterance>\nAssistant:"; SmolVLM(2) the same
# after "<|im_start|>" (SMOLVLM_TEMPLATE, transformers' default SmolVLM template)
IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS3_NAMED = {"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                  "end_of_utterance_token": "<end_of_utterance>", "global_image_token": "<global-img>"}
# SmolVLM's tokenizer here has the sub-image markers as tokens; Idefics3's spells them out in text tokens (as
# transformers' Idefics3 processor test tokenizes them), so both ways are exercised
MARKER_TOKENS = ["<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))]


def _idefics3_text(tokenizer, bos: str, eos: str, pad: str) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                bos_token_id=ids(bos), eos_token_id=ids(eos), pad_token_id=ids(pad))


def _idefics3():
    """Idefics3 as Idefics3-8B-Llama3 ships it, tiny: 48 px tiles (`max_image_size`, there 364), the long edge
    resized to 4 tiles (`size` 4 * 48, there 1456 = 4 * 364), 4 px patches pixel-shuffled 2x2 (`scale_factor` 2):
    6x6 tokens per sub-image.  WIDE 168x126 -> 192x144 px -> 3x4 tiles, then the global image."""
    special = ["<|begin_of_text|>", "<|end_of_text|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>"]
    tokenizer = _tokenizer(special, IDEFICS3_NAMED, IDEFICS3_TEMPLATE, bos_token="<|begin_of_text|>",
                           eos_token="<end_of_utterance>", pad_token="<|end_of_text|>")
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 4 * 48}, max_image_size={"longest_edge": 48})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=36,
                                  chat_template=IDEFICS3_TEMPLATE)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=48,
                  patch_size=4)
    text = _idefics3_text(tokenizer, "<|begin_of_text|>", "<end_of_utterance>", "<|end_of_text|>")
    config = Idefics3Config(vision_config=vision, text_config=text,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2)
    return Idefics3ForConditionalGeneration(config), processor


def _smolvlm():
    """SmolVLM as SmolVLM2-256M-Video-Instruct ships it, tiny: 96 px tiles (there 512), the long edge resized to 4
    tiles (`size` 4 * 96, there 2048 = 4 * 512), 4 px patches pixel-shuffled 4x4 (`scale_factor` 4, as there):
    6x6 tokens per sub-image; SmolLM2's special tokens.  WIDE -> 384x288 px -> 3x4 tiles, then the global image.  A
    video's frames are each stretched to one tile (the video processor's `size` and `max_image_size`), sampled as
    there (`video_sampling`: up to 64 frames, 1 a second)."""
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<end_of_utterance>", "<fake_token_around_image>",
               "<image>", *MARKER_TOKENS]
    tokenizer = _tokenizer(special, IDEFICS3_NAMED, SMOLVLM_TEMPLATE, bos_token="<|im_start|>",
                           eos_token="<end_of_utterance>", pad_token="<|im_end|>")
    image_processor = SmolVLMImageProcessor(size={"longest_edge": 4 * 96}, max_image_size={"longest_edge": 96})
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=SmolVLMVideoProcessor(
                                     video_sampling={"max_frames": 64, "fps": 1, "video_size": {"longest_edge": 96}},
                                     max_image_size={"longest_edge": 96}),
                                 image_seq_len=36, chat_template=SMOLVLM_TEMPLATE)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=96,
                  patch_size=4)
    text = _idefics3_text(tokenizer, "<|im_start|>", "<end_of_utterance>", "<|im_end|>")
    config = SmolVLMConfig(vision_config=vision, text_config=text,
                           image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=4)
    return SmolVLMForConditionalGeneration(config), processor


# google/gemma-3-4b-it's chat template: BOS, "<start_of_turn>user\n", "<start_of_image>" where the image goes, the
# text trimmed, "<end_of_turn>\n", then "<start_of_turn>model\n"
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def _gemma3():
    """Gemma 3 as gemma-3-4b-it ships it: its chat template (BOS from the template, which the tokenizer also
    adds), SigLIP patches average-pooled (16x16 pooled 2x2 to 8x8 here; 64x64 to 16x16 there), the image
    stretched to the square input, pan-and-scan off, sliding and full attention layers."""
    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tokenizer = _tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", *named.values()],
                           named, GEMMA3_TEMPLATE, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    tokenizer.add_bos_token = True  # as Gemma's tokenizer: BOS before every text
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Gemma3ImageProcessor(size={"height": 64, "width": 64})  # mean = std = 0.5, bilinear
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=GEMMA3_TEMPLATE,
                                image_seq_length=64)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=64, patch_size=4, vision_use_head=False)
    text = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
                            layer_types=["sliding_attention", "full_attention"], sliding_window=64,
                            max_position_embeddings=512, bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"),
                            pad_token_id=ids("<pad>"))
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=64,
                          boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
                          image_token_index=ids("<image_soft_token>"))
    model = Gemma3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids("<eos>"), ids("<end_of_turn>")]  # as gemma-3-4b-it's
    return model, processor



@torch.no_grad()
def _sharpen_gemma3(model: torch.nn.Module, factor: float = 30.0, damp: float = 0.1) -> None:
    """Make the layout check sharp: random projector weights, `factor` times the usual size (Gemma 3 initialises
    them to zero, so a random model sees no image at all, and small ones drown in the text embeddings), and the
    random SigLIP attention's output `damp`ed: it spreads every patch's change over all patches, in the image
    features themselves, which no projector scale undoes (undamped: contrast 1.6-1.9)."""
    weight = model.model.multi_modal_projector.mm_input_projection_weight
    weight.normal_(0.0, factor * model.config.text_config.initializer_range)
    for layer in model.model.vision_tower.encoder.layers:
        layer.self_attn.out_proj.weight.mul_(damp)
        layer.self_attn.out_proj.bias.mul_(damp)


def _gemma3n():
    """Gemma 3n as gemma-3n-E4B-it ships it, tiny: Gemma 3's chat template with `<image_soft_token>` where the image
    goes, the image stretched onto a 256 px square (there 768), timm's MobileNetV5 (`mobilenetv5_300m_enc` at a
    twentieth of its channels: 6M parameters, most in the fusion adapter's fixed 2048 outputs) whose 16x16 stride-16
    features are pooled 2x2 to 8x8 soft tokens (there 48x48 pooled 3x3 to 16x16); the vision and audio tokens' own
    embedding rows at the end of the vocabulary; AltUp, per-layer inputs and LAuReL in a 2-layer decoder."""
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
        Gemma3nProcessor,
        SiglipImageProcessor,
    )

    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
             "boa_token": "<start_of_audio>", "eoa_token": "<end_of_audio>", "audio_token": "<audio_soft_token>"}
    template = GEMMA3_TEMPLATE.replace("<start_of_image>", "<image_soft_token>")
    # the named tokens not trained in come last, as there: the vision vocabulary (end of image, image), then audio's
    tokenizer = _tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                            "<start_of_audio>"], named, template, bos_token="<bos>", eos_token="<eos>",
                           pad_token="<pad>")
    tokenizer.add_bos_token = True
    ids = tokenizer.convert_tokens_to_ids
    vision_offset = ids("<end_of_image>")
    image_processor = SiglipImageProcessor(size={"height": 256, "width": 256}, image_mean=[0.0] * 3,
                                           image_std=[1.0] * 3, resample=2)  # bilinear, as there
    processor = Gemma3nProcessor(feature_extractor=Gemma3nAudioFeatureExtractor(), image_processor=image_processor,
                                 tokenizer=tokenizer, chat_template=template, image_seq_length=64, audio_seq_length=4)
    text = dict(vocab_size=len(tokenizer), vocab_size_per_layer_input=vision_offset, hidden_size=64,
                hidden_size_per_layer_input=16, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, head_dim=32, num_kv_shared_layers=0, laurel_rank=8,
                activation_sparsity_pattern=[0.0, 0.0], layer_types=["sliding_attention", "full_attention"],
                sliding_window=64, max_position_embeddings=512, bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"),
                pad_token_id=ids("<pad>"))
    vision = dict(architecture="mobilenetv5_300m_enc", vocab_size=2, vocab_offset=vision_offset,
                  model_args=dict(channel_multiplier=0.05, msfa_output_resolution=8))
    audio = dict(hidden_size=32, conf_num_attention_heads=2, conf_num_hidden_layers=1, vocab_size=2,
                 vocab_offset=vision_offset + 2)
    config = Gemma3nConfig(text_config=text, vision_config=vision, audio_config=audio, vision_soft_tokens_per_image=64,
                           audio_soft_tokens_per_image=4, boi_token_id=ids("<start_of_image>"),
                           eoi_token_id=vision_offset, image_token_id=ids("<image_soft_token>"),
                           boa_token_id=ids("<start_of_audio>"), eoa_token_id=vision_offset + 2,
                           audio_token_id=ids("<audio_soft_token>"))
    model = Gemma3nForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids("<eos>"), ids("<end_of_turn>")]
    return model, processor


@torch.no_grad()
def _sharpen_gemma3n(model: torch.nn.Module, damp: float = 0.1) -> None:
    """Make the layout check sharp: the fusion adapter's input from the stride-32 features (upsampled bilinearly to
    the stride-16 grid, so that each spreads over its neighbours) `damp`ed.  There is no projector to scale: the
    soft tokens' embedder ends in an unscaled RMS norm (undamped: contrast 2.1-2.4)."""
    encoder = model.model.vision_tower.timm_model
    fine = encoder.feature_info[encoder.msfa_indices[0]]["num_chs"]
    encoder.msfa.ffn.pw_exp.conv.weight[:, fine:] *= damp


def _paligemma():
    """PaliGemma 2: no chat template (the processor writes `<image>`s, BOS, the prompt and "\\n"), SigLIP
    patches (8x8 here; 16x16 at 224 px there), a Gemma 2 decoder with soft-capping."""
    tokenizer = _tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<image>"], {}, None, bos_token="<bos>",
                           eos_token="<eos>", pad_token="<pad>")
    tokenizer.add_bos_token = True  # as Gemma's tokenizer; PaliGemmaProcessor turns it off and writes BOS itself
    image_processor = SiglipImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5] * 3,
                                           image_std=[0.5] * 3)  # bicubic, stretched to the square
    image_processor.image_seq_length = 64
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)  # adds <loc*>, <seg*>
    ids = tokenizer.convert_tokens_to_ids
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=64, patch_size=8, vision_use_head=False)
    text = Gemma2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
                        sliding_window=64, max_position_embeddings=512, bos_token_id=ids("<bos>"),
                        eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>"))  # soft-capping 50 / 30 as Gemma 2's
    config = PaliGemmaConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                             vocab_size=len(tokenizer), projection_dim=64, hidden_size=64)
    return PaliGemmaForConditionalGeneration(config), processor



@torch.no_grad()
def _sharpen_paligemma(model: torch.nn.Module, factor: float = 30.0, damp: float = 0.1) -> None:
    """Make the layout check sharp: the projector `factor` times larger (random decoder layers drown the image
    tokens' own signal otherwise), and the random SigLIP attention's output `damp`ed: it spreads every patch's
    change over all patches, in the image features themselves, which no projector scale undoes."""
    linear = model.model.multi_modal_projector.linear
    linear.weight.mul_(factor)
    linear.bias.mul_(factor)
    for layer in model.model.vision_tower.encoder.layers:
        layer.self_attn.out_proj.weight.mul_(damp)
        layer.self_attn.out_proj.bias.mul_(damp)


def _qwen3_5(moe: bool = False):
    """Qwen3.5 (dense, or the MoE text model with `moe`): Qwen3-VL's processor, tokens and 16 px patches, a vision tower
    without DeepStack, and a hybrid text model: Gated DeltaNet (linear attention) layers and a full-attention layer
    last, as in every Qwen3.5 checkpoint (one full layer in four, the fourth)."""
    from transformers import (
        Qwen3_5Config,
        Qwen3_5ForConditionalGeneration,
        Qwen3_5MoeConfig,
        Qwen3_5MoeForConditionalGeneration,
    )

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(patch_size=16, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen3VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                layer_types=["linear_attention", "full_attention"], linear_num_key_heads=2, linear_num_value_heads=2,
                linear_key_head_dim=16, linear_value_head_dim=16,
                rope_parameters={"rope_type": "default", "rope_theta": 1e7, "partial_rotary_factor": 0.5,
                                 "mrope_section": [3, 3, 2], "mrope_interleaved": True},  # rotary 16 of 32, halved
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64)
    config_cls, model_cls = ((Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration) if moe
                             else (Qwen3_5Config, Qwen3_5ForConditionalGeneration))
    config = config_cls(text_config=text, vision_config=vision, tie_word_embeddings=not moe,
                        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return model_cls(config), processor


def _glm46v(moe: bool = False):
    """GLM-4.6V (`glm46v`: GLM-4.1V's model and processor classes under their own names), or with `moe` GLM-4.5V
    (`glm4v_moe`: GLM-4.1V's vision and processor, a MoE text model without sandwich norms): `_glm4v`'s tokens,
    template, patches and pixel range."""
    from transformers import (
        Glm4vMoeConfig,
        Glm4vMoeForConditionalGeneration,
        Glm46VConfig,
        Glm46VForConditionalGeneration,
        Glm46VImageProcessor,
        Glm46VProcessor,
        Glm46VVideoProcessor,
    )

    glm4v, processor = _glm4v()
    tokenizer = processor.tokenizer
    if not moe:  # GLM-4.6V ships its own processor classes
        image_processor = Glm46VImageProcessor(size=dict(processor.image_processor.size))
        processor = Glm46VProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Glm46VVideoProcessor(), chat_template=GLM4V_TEMPLATE)
    config = glm4v.config
    text = {key: value for key, value in config.text_config.to_dict().items()
            if key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                       "num_key_value_heads", "max_position_embeddings", "rope_parameters", "pad_token_id",
                       "eos_token_id")}
    vision = {key: value for key, value in config.vision_config.to_dict().items()
              if key in ("depth", "hidden_size", "intermediate_size", "num_heads", "image_size", "patch_size",
                         "spatial_merge_size", "temporal_patch_size", "out_hidden_size")}
    if moe:
        text.update(head_dim=32, moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2,
                    n_shared_experts=1, first_k_dense_replace=1)  # a dense first layer, then MoE, as GLM-4.5V
    else:  # its sub-configs are GLM-4.1V's
        text["model_type"], vision["model_type"] = "glm4v_text", "glm4v_vision"
    tokens = {key: getattr(config, key) for key in ("image_token_id", "video_token_id", "image_start_token_id",
                                                      "image_end_token_id", "video_start_token_id",
                                                      "video_end_token_id")}
    config_cls, model_cls = ((Glm4vMoeConfig, Glm4vMoeForConditionalGeneration) if moe
                             else (Glm46VConfig, Glm46VForConditionalGeneration))
    return model_cls(config_cls(text_config=text, vision_config=vision, **tokens)), processor


# ERNIE-4.5-VL: "<|begin_of_sentence|>User: Picture 1:<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>{prompt}\n"
# then "Assistant: " (the image's start and end tokens go to the vision experts too)
ERNIE_VL_TEMPLATE = (
    "<|begin_of_sentence|>{% for message in messages %}{% if message['role'] == 'user' %}User: "
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "Picture 1:<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'][0]['text'] }}<|end_of_sentence|>"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"
)


def _ernie4_5_vl_moe():
    """ERNIE-4.5-VL (MoE): Qwen2-VL's 14 px patches and 2x2 merge (one frame per image), merged by the variable-
    resolution resampler; a MoE text model whose experts are split by modality (`moe_mm_token_type_ids`), a dense
    first layer, a tied LM head; the video processor does not draw timestamps (it would need a font file)."""
    from transformers import (
        Ernie4_5_VLMoeConfig,
        Ernie4_5_VLMoeForConditionalGeneration,
        Ernie4_5_VLMoeImageProcessor,
        Ernie4_5_VLMoeProcessor,
        Ernie4_5_VLMoeVideoProcessor,
    )

    named = {"image_token": "<|IMAGE_PLACEHOLDER|>", "image_start_token": "<|IMAGE_START|>",
             "image_end_token": "<|IMAGE_END|>", "video_token": "<|VIDEO_PLACEHOLDER|>",
             "video_start_token": "<|VIDEO_START|>", "video_end_token": "<|VIDEO_END|>"}
    tokenizer = _tokenizer(["<unk>", "<s>", "</s>", "<|begin_of_sentence|>", "<|end_of_sentence|>", *named.values()],
                           named, ERNIE_VL_TEMPLATE, bos_token="<s>", eos_token="</s>", pad_token="<unk>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Ernie4_5_VLMoeImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = Ernie4_5_VLMoeProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                        video_processor=Ernie4_5_VLMoeVideoProcessor(draw_on_frames=False),
                                        chat_template=ERNIE_VL_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 500000.0, "mrope_section": [6, 6, 4]},
                moe_intermediate_size=[32, 16], moe_k=2, moe_num_experts=4, moe_num_shared_experts=1,
                bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<unk>"))
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, patch_size=14, spatial_merge_size=2)
    tokens = {f"{kind}{part}_token_id": ids(named[f"{kind}{part}_token"])
              for kind in ("image", "video") for part in ("", "_start", "_end")}
    config = Ernie4_5_VLMoeConfig(text_config=text, vision_config=vision, **tokens)
    return Ernie4_5_VLMoeForConditionalGeneration(config), processor


# PaddleOCR-VL: ERNIE's turns, "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>" where the image goes
PADDLEOCR_VL_TEMPLATE = (
    "<|begin_of_sentence|>{% for message in messages %}{% if message['role'] == 'user' %}User: "
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'][0]['text'] }}<|end_of_sentence|>"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"
)


def _paddleocr_vl():
    """PaddleOCR-VL: a SigLIP-style tower on 14 px patches in row-major order (position embeddings of a 4x4 grid
    interpolated), merged 2x2 by the projector; an ERNIE-4.5 text model with M-RoPE, tied LM head; no video."""
    from transformers import (
        PaddleOCRVLConfig,
        PaddleOCRVLForConditionalGeneration,
        PaddleOCRVLImageProcessor,
        PaddleOCRVLProcessor,
    )

    named = {"image_token": "<|IMAGE_PLACEHOLDER|>"}
    special = ["<unk>", "<s>", "</s>", "<|begin_of_sentence|>", "<|end_of_sentence|>", "<|IMAGE_START|>",
               "<|IMAGE_END|>", "<|video_pad|>", *named.values()]
    tokenizer = _tokenizer(special, named, PADDLEOCR_VL_TEMPLATE, bos_token="<s>", eos_token="</s>", pad_token="<unk>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = PaddleOCRVLImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = PaddleOCRVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     chat_template=PADDLEOCR_VL_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 500000.0, "mrope_section": [4, 6, 6]},
                bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<unk>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=56,
                  patch_size=14, spatial_merge_size=2)
    config = PaddleOCRVLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|IMAGE_PLACEHOLDER|>"),
                               video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|IMAGE_START|>"),
                               vision_end_token_id=ids("<|IMAGE_END|>"))
    return PaddleOCRVLForConditionalGeneration(config), processor


def _exaone4_5():
    """EXAONE 4.5: Qwen2.5-VL's vision tower (window attention, GQA heads here) and merger, Qwen2-VL's image processor
    and tokens (the checkpoint's own token names differ), an EXAONE-4 text model with sliding and full attention
    layers and plain 1-D positions (no M-RoPE), untied LM head."""
    from transformers import Exaone4_5_Config, Exaone4_5_ForConditionalGeneration, Exaone4_5_Processor

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    parts = build_processor(tokenizer)
    processor = Exaone4_5_Processor(image_processor=parts.image_processor, tokenizer=tokenizer,
                                    video_processor=parts.video_processor, chat_template=CHAT_TEMPLATE)
    text = dict(model_type="exaone4", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, sliding_window=64, sliding_window_pattern=2,  # local, then global
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, num_key_value_heads=1, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, window_size=56,
                  fullatt_block_indexes=[0])
    config = Exaone4_5_Config(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                              video_token_id=ids("<|video_pad|>"))
    return Exaone4_5_ForConditionalGeneration(config), processor


# Cohere Compass (North Vision), Command-style turns: BOS, "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", the image's
# "<|VISION_START|><|IMAGE_PAD|><|VISION_END|>", the prompt, "<|END_OF_TURN_TOKEN|>", then the chatbot's turn
COHERE_COMPASS_TEMPLATE = (
    "<BOS_TOKEN>{% for message in messages %}<|START_OF_TURN_TOKEN|>"
    "{% if message['role'] == 'user' %}<|USER_TOKEN|>{% else %}<|CHATBOT_TOKEN|>{% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|VISION_START|><|IMAGE_PAD|><|VISION_END|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|END_OF_TURN_TOKEN|>"
    "{% endfor %}{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)


def _cohere_compass():
    """Cohere Compass: Qwen3-VL's vision tower (DeepStack), processor classes and 16 px patches with Cohere's tokens;
    a Cohere 2 text model (parallel attention and MLP, LayerNorm) with a sliding M-RoPE layer and a global layer
    without positions (NoPE), and a `logit_scale` on the logits."""
    from transformers import (
        CohereCompassConfig,
        CohereCompassForConditionalGeneration,
        CohereCompassImageProcessor,
        CohereCompassProcessor,
        CohereCompassVideoProcessor,
    )

    named = {"image_token": "<|IMAGE_PAD|>", "video_token": "<|VIDEO_PAD|>", "vision_start_token": "<|VISION_START|>",
             "vision_end_token": "<|VISION_END|>"}
    special = ["<PAD>", "<UNK>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
               "<|CHATBOT_TOKEN|>", *named.values()]
    tokenizer = _tokenizer(special, named, COHERE_COMPASS_TEMPLATE, bos_token="<BOS_TOKEN>",
                           eos_token="<|END_OF_TURN_TOKEN|>", pad_token="<PAD>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = CohereCompassImageProcessor(patch_size=16, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = CohereCompassProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                       video_processor=CohereCompassVideoProcessor(),
                                       chat_template=COHERE_COMPASS_TEMPLATE)
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [6, 5, 5]}  # head_dim 32 / 2 over t, h, w
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                layer_types=["sliding_attention", "full_attention"], sliding_window=64,
                rope_parameters={"sliding_attention": rope, "full_attention": None}, logit_scale=0.25,
                bos_token_id=ids("<BOS_TOKEN>"), eos_token_id=ids("<|END_OF_TURN_TOKEN|>"), pad_token_id=ids("<PAD>"))
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64, deepstack_visual_indexes=[0])
    config = CohereCompassConfig(text_config=text, vision_config=vision, image_token_id=ids("<|IMAGE_PAD|>"),
                                 video_token_id=ids("<|VIDEO_PAD|>"), vision_start_token_id=ids("<|VISION_START|>"),
                                 vision_end_token_id=ids("<|VISION_END|>"))
    return CohereCompassForConditionalGeneration(config), processor


# dots3 note: ChatML with dots' image tokens, "<|img|><|imgpad|><|endofimg|>" where the image goes
DOTS3_NOTE_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|img|><|imgpad|><|endofimg|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _dots3_note():
    """dots3 note: Qwen2-VL's image processor with one frame per patch (the tower embeds 14 px patches of one frame),
    a NaViT tower merged 2x2 by Qwen2-VL's PatchMerger; a DeepSeek-V3.2-like MoE text model with MLA attention, a
    sliding layer and a sparse-attention layer (DSA: each query reads its top `index_topk` keys, 2048 as released,
    more than these prompts' tokens: below a prompt's length transformers' cached decoding of the layer differs from
    its full forward), and an audio tower that no image prompt uses."""
    from transformers import Dots3NoteConfig, Dots3NoteForConditionalGeneration, Dots3NoteProcessor
    from transformers.models.dots3_note.feature_extraction_dots3_note import Dots3NoteFeatureExtractor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|img|>", "<|imgpad|>", "<|endofimg|>", "<|video_pad|>",
               "<|audio_comp_pad|>"]
    tokenizer = _tokenizer(special, {}, DOTS3_NOTE_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, temporal_patch_size=1)
    processor = Dots3NoteProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   video_processor=Qwen3VLVideoProcessor(patch_size=14),
                                   feature_extractor=Dots3NoteFeatureExtractor(), chat_template=DOTS3_NOTE_TEMPLATE)
    attention = dict(num_attention_heads=2, num_key_value_heads=2, q_lora_rank=16, kv_lora_rank=16, head_dim=24,
                     qk_nope_head_dim=16, v_head_dim=16)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                moe_intermediate_size=32, shared_experts_intermediate_size=32, n_routed_experts=4,
                num_experts_per_tok=2, n_shared_experts=1, qk_rope_head_dim=8, index_head_dim=16,
                index_n_heads=2, max_position_embeddings=4096, layer_types=["sliding_attention", "indexed_attention"],
                sliding_window=64, **attention, **{f"swa_{key}": value for key, value in attention.items()},
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, moe_intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, patch_size=14, spatial_merge_size=2, pyramid_num_routed=[-1],  # dense
                  adapter_in_dim=32, adapter_out_dim=64, adapter_merge_size=2)
    audio = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 downsample_hidden_size=16, adapter_input_size=32, adapter_out_dim=64)
    config = Dots3NoteConfig(text_config=text, vision_config=vision, audio_config=audio,
                             image_token_id=ids("<|imgpad|>"), video_token_id=ids("<|video_pad|>"),
                             audio_token_id=ids("<|audio_comp_pad|>"))
    return Dots3NoteForConditionalGeneration(config), processor


def _cosmos3_omni():
    """Cosmos3 Omni (Cosmos3-Nano's reasoner): Qwen3-VL's model under its own config and class (no processor of its own:
    the checkpoint names Qwen3-VL's), so `_qwen3_vl`'s processor and sizes."""
    from transformers import Cosmos3OmniConfig, Cosmos3OmniForConditionalGeneration

    qwen3_vl, processor = _qwen3_vl()
    config = qwen3_vl.config.to_dict()
    keys = ("text_config", "vision_config", "image_token_id", "video_token_id", "vision_start_token_id",
            "vision_end_token_id", "tie_word_embeddings")
    return Cosmos3OmniForConditionalGeneration(Cosmos3OmniConfig(**{key: config[key] for key in keys})), processor


def _lfm3_vl():
    """LFM3-VL: Qwen3-VL's processor and 16 px patches (no M-RoPE: 1-D positions), a vision tower of a short
    convolution and an attention layer, a projector merging each 2x2 block; an LFM3 text model of a sliding and a
    full attention layer, then a short-convolution layer last, as in the checkpoints (attention every few layers)."""
    from transformers import Lfm3VlConfig, Lfm3VlForConditionalGeneration, Lfm3VlProcessor

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(patch_size=16, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Lfm3VlProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=Qwen3VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = dict(model_type="lfm3", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, layer_types=["sliding_attention", "full_attention", "conv"],
                sliding_window=64, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                  layer_types=["conv", "full_attention"])
    config = Lfm3VlConfig(text_config=text, vision_config=vision, projector_hidden_size=64,
                          image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                          vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return Lfm3VlForConditionalGeneration(config), processor


LFM2_VL_TOKENS = {"image_token": "<image>", "image_start_token": "<|image_start|>",
                  "image_end_token": "<|image_end|>", "image_thumbnail_token": "<|img_thumbnail|>"}


def _lfm2_vl():
    """LFM2-VL as LFM2-VL-1.6B ships it, tiny: 4 px patches folded 2x2 (there 16 px), tiles of 32 px (there 512: a
    tile's tokens equal `max_image_tokens`, 16 here and 256 there), a quarter of that the least tokens; SigLIP2
    NaFlex; an LFM2 text model of an attention then a short-convolution layer.  WIDE 168x126 (over twice 16 tokens'
    pixels) -> 3x2 tiles (the 4x3 canvas has more than `max_tiles` 10) of 4x4 tokens, then the thumbnail at 32x24 px
    (3x4 tokens); (40, 30) -> one grid of 3x4."""
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration, Lfm2VlImageProcessor, Lfm2VlProcessor

    markers = [f"<|img_row_{r}_col_{c}|>" for r in range(1, 11) for c in range(1, 11)]
    special = ["<|startoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>", *LFM2_VL_TOKENS.values(), *markers]
    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>\n", "<image>")
    tokenizer = _tokenizer(special, LFM2_VL_TOKENS, template, eos_token="<|im_end|>", pad_token="<|pad|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Lfm2VlImageProcessor(encoder_patch_size=4, tile_size=32, min_image_tokens=4,
                                           max_image_tokens=16)
    processor = Lfm2VlProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                layer_types=["full_attention", "conv"], eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|pad|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=4,
                  num_patches=64)
    config = Lfm2VlConfig(text_config=text, vision_config=vision, projector_hidden_size=64,
                          image_token_id=ids("<image>"))
    return Lfm2VlForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_lfm2_vl(model: torch.nn.Module, factor: float = 30.0, damp: float = 0.1) -> None:
    """The projector `factor` times larger and the random SigLIP2 attention's output `damp`ed, as for PaliGemma: it
    spreads every patch's change over its view, which no projector scale undoes (undamped: contrast 1.6 at
    (400, 200))."""
    scale_projector("multi_modal_projector", factor)(model)
    for layer in model.model.vision_tower.encoder.layers:
        layer.self_attn.out_proj.weight.mul_(damp)
        layer.self_attn.out_proj.bias.mul_(damp)


def _hyperclovax_vision_v2():
    """HyperCLOVA X Vision V2: Qwen2.5-VL's vision tower (window attention) and merger, then a linear projector,
    EXAONE 4.5's processor with Qwen2-VL's image processor and tokens; a HyperCLOVA X text model with MuP multipliers
    (embeddings, residuals, attention, logits) and post-norms, 1-D positions, tied LM head."""
    from transformers import (
        HyperCLOVAXVisionV2Config,
        HyperCLOVAXVisionV2ForConditionalGeneration,
        HyperCLOVAXVisionV2Processor,
    )

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    parts = build_processor(tokenizer)
    processor = HyperCLOVAXVisionV2Processor(image_processor=parts.image_processor, tokenizer=tokenizer,
                                             video_processor=parts.video_processor, chat_template=CHAT_TEMPLATE)
    text = dict(model_type="hyperclovax", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, embedding_multiplier=2.0, residual_multiplier=0.5,
                attention_multiplier=0.125, logits_scaling=0.5, eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))
    vision = dict(model_type="qwen2_5_vl_vision", depth=1, hidden_size=32, intermediate_size=64, num_heads=1,
                  out_hidden_size=64, patch_size=14, spatial_merge_size=2, window_size=56, fullatt_block_indexes=[0])
    config = HyperCLOVAXVisionV2Config(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                                       video_token_id=ids("<|video_pad|>"))
    return HyperCLOVAXVisionV2ForConditionalGeneration(config), processor


# MiniMax M3: "]~b]user\n", the image's "]<]image[>[" (the processor brackets the expanded tokens with the image's start
# and end itself), the prompt, "[e~[\n", then "]~b]ai\n"
MINIMAX_M3_TEMPLATE = (
    "{% for message in messages %}]~b]{{ message['role'] }}\n{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}]<]image[>[{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}[e~[\n{% endfor %}{% if add_generation_prompt %}]~b]ai\n{% endif %}"
)


def _minimax_m3_vl():
    """MiniMax M3 VL: Qwen2-VL's image processor (its own class) and 14 px patches, a ViT whose patches a projector
    maps and merges 2x2 in the processor's block order; a MoE text model (a dense first layer) whose second layer is
    block-sparse attention: each query reads its top 8 blocks of 16 keys and its local block (16 of 128 keys as
    released: a prompt of fewer tokens is read whole)."""
    from transformers import (
        MiniMaxM3SparseForConditionalGeneration,
        MiniMaxM3VLConfig,
        MiniMaxM3VLImageProcessor,
        MiniMaxM3VLProcessor,
    )
    from transformers.models.minimax_m3_vl.video_processing_minimax_m3_vl import MiniMaxM3VLVideoProcessor

    special = ["]~!b[", "[e~[", "]~b]", "]<]image[>[", "]<]video[>[", "]<]start of image[>[", "]<]end of image[>[",
               "<pad>"]
    tokenizer = _tokenizer(special, {}, MINIMAX_M3_TEMPLATE, bos_token="]~!b[", eos_token="[e~[", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = MiniMaxM3VLImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = MiniMaxM3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=MiniMaxM3VLVideoProcessor(), chat_template=MINIMAX_M3_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=32, dense_intermediate_size=128,
                shared_intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                head_dim=32, rotary_dim=16, max_position_embeddings=4096, num_local_experts=4, num_experts_per_tok=2,
                mlp_layer_types=["dense", "sparse"], layer_types=["full_attention", "minimax_m3_sparse"],
                index_n_heads=2, index_head_dim=16, index_block_size=16, index_topk_blocks=8, index_local_blocks=1,
                bos_token_id=ids("]~!b["), eos_token_id=ids("[e~["), pad_token_id=ids("<pad>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=14,
                  temporal_patch_size=2, spatial_merge_size=2, image_size=56)
    config = MiniMaxM3VLConfig(text_config=text, vision_config=vision, projector_hidden_size=64,
                               image_token_index=ids("]<]image[>["), video_token_index=ids("]<]video[>["))
    return MiniMaxM3SparseForConditionalGeneration(config), processor

# MiniCPM-V 4.6 / 4.7 / MiniCPM-OCR: ChatML, the image as one `<|image_pad|>` the processor expands
MINICPMV_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<|image_pad|>")
MINICPMV_NAMED = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
                  "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
                  "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>"}


def _minicpmv(model_type: str = "minicpmv4_6"):
    """MiniCPM-V 4.6 (or 4.7, MiniCPM-OCR with `model_type`), tiny: 7 px patches, slices of `scale_resolution` 112 px
    (there 448 px of 14 px patches), the window merger after the one vision layer and the 2x2 merger (16x, 4x for
    MiniCPM-OCR as shipped); a Qwen3.5 text model of full-attention layers only (`qwen3_5` tests the hybrid).
    WIDE 168x126 -> the overview 140x84 px (16x: 3x5 tokens), then 1x2 slices of 84x140 px (5x3 tokens each)."""
    from transformers import (
        MiniCPMOcrConfig,
        MiniCPMOcrForConditionalGeneration,
        MiniCPMOcrImageProcessor,
        MiniCPMOcrProcessor,
        MiniCPMOcrVideoProcessor,
        MiniCPMV4_6Config,
        MiniCPMV4_6ForConditionalGeneration,
        MiniCPMV4_6ImageProcessor,
        MiniCPMV4_6Processor,
        MiniCPMV4_6VideoProcessor,
        MiniCPMV4_7Config,
        MiniCPMV4_7ForConditionalGeneration,
        MiniCPMV4_7Processor,
    )

    config_cls, model_cls, processor_cls, image_cls, video_cls = {
        "minicpmv4_6": (MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration, MiniCPMV4_6Processor,
                        MiniCPMV4_6ImageProcessor, MiniCPMV4_6VideoProcessor),
        "minicpmv4_7": (MiniCPMV4_7Config, MiniCPMV4_7ForConditionalGeneration, MiniCPMV4_7Processor,
                        MiniCPMV4_6ImageProcessor, MiniCPMV4_6VideoProcessor),  # 4.6's image processing
        "minicpm_ocr": (MiniCPMOcrConfig, MiniCPMOcrForConditionalGeneration, MiniCPMOcrProcessor,
                        MiniCPMOcrImageProcessor, MiniCPMOcrVideoProcessor),
    }[model_type]
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *MINICPMV_NAMED.values()]
    tokenizer = _tokenizer(special, MINICPMV_NAMED, MINICPMV_TEMPLATE, eos_token="<|im_end|>",
                           pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    pixels = dict(scale_resolution=112, patch_size=7)
    processor = processor_cls(image_processor=image_cls(**pixels), video_processor=video_cls(**pixels),
                              tokenizer=tokenizer, chat_template=MINICPMV_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                layer_types=["full_attention", "full_attention"],  # no Gated DeltaNet: its CPU fallback is slow
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=112,
                  patch_size=7)
    markers = {}
    if model_type == "minicpmv4_7":  # Canvas M-RoPE places the markers and the row newline ("\n" is "Ċ" here)
        markers = dict(image_start_id=ids("<image>"), image_end_id=ids("</image>"), slice_start_id=ids("<slice>"),
                       slice_end_id=ids("</slice>"), newline_id=ids("Ċ"))
    config = config_cls(text_config=text, vision_config=vision, insert_layer_id=0, image_token_id=ids("<|image_pad|>"),
                        video_token_id=ids("<|video_pad|>"), **markers)
    return model_cls(config), processor


def _glm_ocr():
    """GLM-OCR: GLM-4.1V's model with its own vision attention (biased, with q/k norms) and text attention, and
    GLM-4.1V's processor (the checkpoint names it; none in the auto map): `_glm4v`'s tokens, template and sizes."""
    from transformers import GlmOcrConfig, GlmOcrForConditionalGeneration

    glm4v, processor = _glm4v()
    config = glm4v.config.to_dict()
    text, vision = ({key: value for key, value in config[part].items() if key != "model_type"}
                    for part in ("text_config", "vision_config"))
    keys = ("image_token_id", "video_token_id", "image_start_token_id", "image_end_token_id", "video_start_token_id",
            "video_end_token_id")
    config = GlmOcrConfig(text_config=text, vision_config=vision, **{key: config[key] for key in keys})
    return GlmOcrForConditionalGeneration(config), processor


# HunyuanOCR: "<|hy_User|>", the image as "<hy_image_start><hy_image><hy_image_end>" (the processor expands the middle
# token into the span, begin and end slots included), the prompt, then "<|hy_Assistant|>"
HUNYUAN_VL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|hy_{{ message['role'] | capitalize }}|>"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<hy_image_start><hy_image><hy_image_end>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}<|hy_Assistant|>{% endif %}"
)


def _hunyuan_vl():
    """HunyuanOCR: 16 px patches in row-major order, a ViT, a 2x2 convolution merger that appends a newline feature to
    each merged row and a begin and an end slot around the image, a dense HunYuan text model with 4-axis M-RoPE."""
    from transformers import (
        HunYuanVLConfig,
        HunYuanVLForConditionalGeneration,
        HunYuanVLImageProcessor,
        HunYuanVLProcessor,
    )

    named = {"image_token": "<hy_image>", "image_start_token": "<hy_image_start>", "image_end_token": "<hy_image_end>"}
    special = ["<hy_bos>", "<hy_eos>", "<hy_pad>", "<|hy_User|>", "<|hy_Assistant|>", *named.values()]
    tokenizer = _tokenizer(special, named, HUNYUAN_VL_TEMPLATE, bos_token="<hy_bos>", eos_token="<hy_eos>",
                           pad_token="<hy_pad>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = HunYuanVLImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = HunYuanVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   chat_template=HUNYUAN_VL_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 4, 4, 4]},
                bos_token_id=ids("<hy_bos>"), eos_token_id=ids("<hy_eos>"), pad_token_id=ids("<hy_pad>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  out_hidden_size=64, max_image_size=448)
    config = HunYuanVLConfig(text_config=text, vision_config=vision, image_token_id=ids("<hy_image>"),
                             im_start_id=ids("<hy_image_start>"), im_end_id=ids("<hy_image_end>"))
    return HunYuanVLForConditionalGeneration(config), processor


# Hy4: ChatML turns with the image as "<|hy_image_start|><|image_pad|><|hy_image_end|>" (the processor expands the pad)
HY_V4_VL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|hy_image_start|><|image_pad|><|hy_image_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _hy_v4_vl():
    """Hy4: HunyuanOCR's patches and merger without the begin and end slots (a newline slot per merged row); a MoE text
    model with latent (MLA) attention, an indexer choosing the keys each query reads, and hyper-connections: every
    layer carries `hc_mult` residual streams, collapsed once before the final norm."""
    from transformers import HYV4VLConfig, HYV4VLForConditionalGeneration, HYV4VLImageProcessor, HYV4VLProcessor
    from transformers.models.hy_v4_vl.video_processing_hy_v4_vl import HYV4VLVideoProcessor

    named = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|hy_image_start|>", "<|hy_image_end|>",
               *named.values()]
    tokenizer = _tokenizer(special, named, HY_V4_VL_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = HYV4VLImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = HYV4VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=HYV4VLVideoProcessor(), chat_template=HY_V4_VL_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=4096, n_routed_experts=4,
                num_experts_per_tok=2, q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=16,
                v_head_dim=16, index_topk=64, index_head_dim=16, index_n_heads=2, hc_mult=2,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]},
                bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, out_hidden_size=64,
                  max_image_size=448)
    config = HYV4VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                          video_token_id=ids("<|video_pad|>"))
    return HYV4VLForConditionalGeneration(config), processor


def _video_llama_3():
    """VideoLLaMA 3 (image model): Qwen2-VL's tokens and chat template, a SigLIP-style ViT with 2-D RoPE over 14 px
    patches and no merge for images, a linear projector, a Qwen2 text model."""
    from transformers import (
        VideoLlama3Config,
        VideoLlama3ForConditionalGeneration,
        VideoLlama3ImageProcessor,
        VideoLlama3Processor,
        VideoLlama3VideoProcessor,
    )

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = VideoLlama3ImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = VideoLlama3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=VideoLlama3VideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = build_config(tokenizer, **TINY_QWEN).text_config.to_dict()
    text = {key: value for key, value in text.items() if key not in ("model_type", "rope_parameters")}
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=14)
    config = VideoLlama3Config(text_config={"model_type": "qwen2", **text}, vision_config=vision,
                               image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"))
    return VideoLlama3ForConditionalGeneration(config), processor


# Inkling 2: ChatML turns with one "<|image|>" where the image goes (the processor repeats it, one per 40 px cell)
INKLING2_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<|image|>")


def _inkling2(loop: bool = False):
    """Inkling 2 (or with `loop` Inkling 2 Mini, whose middle layers run twice): the image padded (not resized) to
    40 px cells of 2x2 20 px patches, a ViT with a class token per image, a merger MLP; a text model of sliding and
    full attention layers with sinks, short convolutions, attention over earlier blocks' states as its residual
    stream, MoE MLPs and soft-capped logits."""
    from transformers import Inkling2Config, Inkling2ForConditionalGeneration, Inkling2ImageProcessor, Inkling2Processor

    named = {"image_token": "<|image|>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()], named, INKLING2_TEMPLATE,
                           eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    processor = Inkling2Processor(image_processor=Inkling2ImageProcessor(), tokenizer=tokenizer,
                                  chat_template=INKLING2_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), unpadded_vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, swa_num_attention_heads=2,
                swa_num_key_value_heads=1, swa_head_dim=32, sliding_window_size=64, d_rel=8, rel_extent=64,
                moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2, n_layers_per_attn_res_block=1,
                layer_types=["hybrid_sliding", "hybrid"], eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))
    vision = dict(model_type="inkling2_vision", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  patch_size=20, posemb_grid_size=8, projection_hidden_dim=64, text_hidden_size=64)
    if not loop:
        config = Inkling2Config(text_config=text, vision_config=vision, image_token_id=ids("<|image|>"))
        return Inkling2ForConditionalGeneration(config), processor
    from transformers import Inkling2LoopConfig, Inkling2LoopForConditionalGeneration

    text.update(num_hidden_layers=3, layer_types=["hybrid_sliding", "hybrid_sliding", "hybrid"],
                loop_layer_index_start=1, loop_layer_index_end=2, loop_num_passes=2, loop_gate_rank=8)
    config = Inkling2LoopConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image|>"))
    return Inkling2LoopForConditionalGeneration(config), processor


# Inkling: ChatML turns with "<|content_image|><|image|>" where the image goes (the processor repeats the second, one
# per 40 px cell)
INKLING_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<|content_image|><|image|>")


def _inkling():
    """Inkling: 40 px cells of raw pixels (an extra column always), each through an MLP and a norm on its own, no
    vision attention; the processor also reads audio (a feature extractor it needs); a text model like Inkling 2's
    with dense and MoE MLPs, whose final states are divided by a width multiplier before a padded LM head."""
    from transformers import InklingConfig, InklingForConditionalGeneration, InklingImageProcessor, InklingProcessor
    from transformers.models.inkling.feature_extraction_inkling import InklingFeatureExtractor

    named = {"image_token": "<|image|>", "audio_token": "<|audio|>"}
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|content_image|>", "<|content_audio_input|>",
               *named.values()]
    tokenizer = _tokenizer(special, named, INKLING_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    processor = InklingProcessor(feature_extractor=InklingFeatureExtractor(), image_processor=InklingImageProcessor(),
                                 tokenizer=tokenizer, chat_template=INKLING_TEMPLATE, image_token="<|image|>",
                                 audio_token="<|audio|>")
    text = dict(vocab_size=len(tokenizer) + 3, unpadded_vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, swa_num_attention_heads=2,
                swa_num_key_value_heads=1, swa_head_dim=32, sliding_window_size=64, d_rel=8, rel_extent=64,
                intermediate_size=128, moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2,
                n_shared_experts=1, logits_mup_width_multiplier=2.0, bos_token_id=None,
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(text_hidden_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    tokens = {f"{kind}_token_id": ids(named[f"{kind}_token"]) for kind in ("image", "audio")}
    tokens.update(image_bos_token_id=ids("<|content_image|>"), audio_bos_token_id=ids("<|content_audio_input|>"))
    config = InklingConfig(text_config=text, vision_config=vision, audio_config=dict(text_hidden_size=64), **tokens)
    return InklingForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_inkling2(model: torch.nn.Module, damp: float = 0.001) -> None:
    """Make the layout check sharp: Inkling (2)'s layers read normalised states (attention over earlier blocks'
    states), so no projector scale outweighs what the random text attention mixes in; its output is `damp`ed instead
    (undamped: contrast 1.3-2.3, flipped views 0.7-0.9; at 0.01 the looped model's largest image is still blurred)."""
    for layer in model.model.language_model.layers:
        output = layer.self_attn.o_proj  # Inkling 2's is gated, Inkling's plain
        getattr(output, "linear", output).weight.mul_(damp)


OVIS2_MARKERS = ["<IMG_START>", "<IMG_GRID>", "<IMG_COL>", "<IMG_ROW>", "<IMG_END>"]


def _ovis2():
    """Ovis2 as the checkpoints ship it, tiny: 112 px tiles (there 448) of 14 px patches grouped 2x2 (4x4 visual words
    per tile), the fewest tiles covering 90% of the image, the thumbnail first; each word a softmax over a visual
    vocabulary times its embedding table; the markers' embeddings come from that table too; a Qwen2 text model."""
    from transformers import Ovis2Config, Ovis2ForConditionalGeneration, Ovis2ImageProcessor, Ovis2Processor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<IMG_ATOM>", *OVIS2_MARKERS]
    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<image>")
    tokenizer = _tokenizer(special, {}, template, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Ovis2ImageProcessor(size={"height": 112, "width": 112}, crop_to_patches=True, max_patches=9)
    processor = Ovis2Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template,
                               image_seq_length=16)
    text = dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=112,
                  patch_size=14, vocab_size=64, hidden_stride=2)
    markers = [ids(marker) for marker in OVIS2_MARKERS]
    config = Ovis2Config(vision_config=vision, text_config=text, image_token_id=ids("<IMG_ATOM>"),
                         visual_indicator_token_ids=markers, vocab_size=len(tokenizer), hidden_size=64)
    return Ovis2ForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_ovis2(model: torch.nn.Module, factor: float = 30.0) -> None:
    """The visual words' embedding table `factor` times larger: the image features are softmax mixtures of its rows
    (behind a layer norm, which undoes any scaling of the head before it; unsharpened: contrast 1.1)."""
    model.model.visual_embeddings_table.weight.mul_(factor)


# Perception LM: Llama 3 turns, "<|image|>" where the image goes (the checkpoint's system prompt left out)
PERCEPTION_LM_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|image|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def _perception_lm():
    """Perception LM as the checkpoints ship it, tiny: 64 px tiles (there 448) of 8 px patches (there 14) pooled 2x2
    to 4x4 tokens, the thumbnail first, at most 6 tiles (there 36); a timm PE encoder (`vit_pe_core_large_patch14_336`
    shrunk by its `model_args`, CLS dropped) and a Llama text model."""
    from transformers import (
        PerceptionLMConfig,
        PerceptionLMForConditionalGeneration,
        PerceptionLMImageProcessor,
        PerceptionLMProcessor,
        PerceptionLMVideoProcessor,
        TimmWrapperConfig,
    )

    named = {"image_token": "<|image|>", "video_token": "<|video|>"}
    tokenizer = _tokenizer(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>", *named.values()], named, PERCEPTION_LM_TEMPLATE,
                           bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|end_of_text|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = PerceptionLMImageProcessor(tile_size=64, max_num_tiles=6)
    processor = PerceptionLMProcessor(image_processor=image_processor, video_processor=PerceptionLMVideoProcessor(),
                                      tokenizer=tokenizer, patch_size=8, pooling_ratio=2,
                                      chat_template=PERCEPTION_LM_TEMPLATE)
    vision = TimmWrapperConfig(architecture="vit_pe_core_large_patch14_336", do_pooling=False, num_labels=0,
                               model_args=dict(embed_dim=32, depth=1, num_heads=2, img_size=(64, 64), patch_size=8,
                                               ref_feat_shape=(8, 8), global_pool=""))
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                       bos_token_id=ids("<|begin_of_text|>"), eos_token_id=ids("<|eot_id|>"),
                       pad_token_id=ids("<|end_of_text|>"))
    config = PerceptionLMConfig(vision_config=vision, text_config=text, projector_pooling_ratio=2,
                                image_token_id=ids("<|image|>"), video_token_id=ids("<|video|>"))
    return PerceptionLMForConditionalGeneration(config), processor
def _phi4_multimodal():
    """Phi-4-multimodal, tiny: crops of 128 px (there 448) of 4 px patches, so each crop is still the 32x32 patches
    pooled to the 16x16 tokens the processor counts on (it writes 256 + 16 for the global grid whatever the config);
    up to 12 crops; a tiny audio encoder (never fed); the Phi-4 text model."""
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalForCausalLM,
        Phi4MultimodalImageProcessor,
        Phi4MultimodalProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image|>", "<|audio|>"]
    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<|image|>")
    tokenizer = _tokenizer(special, {"image_token": "<|image|>", "audio_token": "<|audio|>"}, template,
                           eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Phi4MultimodalImageProcessor(size={"height": 128, "width": 128}, patch_size=4, dynamic_hd=12)
    processor = Phi4MultimodalProcessor(image_processor=image_processor,
                                        audio_processor=Phi4MultimodalFeatureExtractor(), tokenizer=tokenizer,
                                        chat_template=template)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=128,
                  patch_size=4, crop_size=128, image_token_id=ids("<|image|>"))
    audio = dict(hidden_size=32, intermediate_size=32, num_blocks=1, num_attention_heads=2, ext_pw_out_channel=32,
                 depthwise_separable_out_channel=32, nemo_conv_channels=32, audio_token_id=ids("<|audio|>"))
    config = Phi4MultimodalConfig(vision_config=vision, audio_config=audio, vocab_size=len(tokenizer), hidden_size=64,
                                  intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                  num_key_value_heads=1, max_position_embeddings=4096,
                                  original_max_position_embeddings=4096, bos_token_id=ids("<|endoftext|>"),
                                  eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    return Phi4MultimodalForCausalLM(config), processor


def _unlimited_ocr():
    """Unlimited-OCR, tiny: a 128 px global square and 64 px tiles of 8 px patches downsampled 4x (4x4 and 2x2 tokens;
    there 1024 and 640 px of 16 px), up to 12 tiles; SAM and CLIP of one layer; a DeepSeek-V2 text model of a dense and
    a sparse layer, with the checkpoints' sliding window of 128 answer tokens."""
    from transformers import (
        UnlimitedOcrConfig,
        UnlimitedOcrForConditionalGeneration,
        UnlimitedOcrImageProcessor,
        UnlimitedOcrProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<image>")
    tokenizer = _tokenizer(special, {"image_token": "<image>"}, template, eos_token="<|im_end|>",
                           pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = UnlimitedOcrImageProcessor(size={"height": 128, "width": 128}, tile_size=64, max_patches=12)
    processor = UnlimitedOcrProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template,
                                      patch_size=8, downsample_ratio=4)
    sam = dict(hidden_size=32, output_channels=32, num_hidden_layers=1, num_attention_heads=2, image_size=128,
               patch_size=8, window_size=4, global_attn_indexes=[0], mlp_dim=64, downsample_channels=[32, 32],
               initializer_range=0.02)  # the default 1e-10 leaves a random SAM blind to the image
    encoder = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=128,
                   patch_size=8)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, n_routed_experts=4, num_experts_per_tok=2,
                moe_intermediate_size=32, n_shared_experts=1, mlp_layer_types=["dense", "sparse"],
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"), bos_token_id=ids("<|endoftext|>"))
    config = UnlimitedOcrConfig(vision_config=dict(sam_config=sam, encoder_config=encoder), text_config=text,
                                image_token_id=ids("<image>"))
    return UnlimitedOcrForConditionalGeneration(config), processor


# Qwen2.5-Omni: ChatML turns with "<|vision_bos|><|IMAGE|><|vision_eos|>" where the image goes
OMNI_TOKENS = {"image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
               "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
               "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}
OMNI_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>\n", "<|vision_bos|><|IMAGE|><|vision_eos|>")


def _qwen2_5_omni_thinker():
    """Qwen2.5-Omni's thinker (the text generator; the talker speaks its answer): Qwen2.5-VL's vision tower and grid,
    a Whisper-style audio tower the tiny model never feeds, the processor's Qwen2-VL image processor and Whisper
    feature extractor, a Qwen2 text model with M-RoPE."""
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *OMNI_TOKENS.values()], OMNI_TOKENS,
                           OMNI_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen2_5OmniProcessor(image_processor=image_processor, video_processor=Qwen2VLVideoProcessor(),
                                     feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer,
                                     chat_template=OMNI_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, out_hidden_size=64, patch_size=14,
                  spatial_merge_size=2, window_size=56, fullatt_block_indexes=[0])
    audio = dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                 output_dim=64)
    tokens = {f"{kind}_token_index": ids(OMNI_TOKENS[f"{kind}_token"]) for kind in ("image", "video", "audio")}
    tokens.update({f"{kind}_{edge}_token_id": ids(OMNI_TOKENS[f"{kind}_{bound}_token"])
                   for kind in ("vision", "audio") for edge, bound in (("start", "bos"), ("end", "eos"))})
    config = Qwen2_5OmniThinkerConfig(text_config=text, vision_config=vision, audio_config=audio, **tokens)
    return Qwen2_5OmniThinkerForConditionalGeneration(config), processor


def _qwen3_omni_moe_thinker():
    """Qwen3-Omni's thinker: Qwen3-VL's vision tower (16 px patches, 2x2 merge, DeepStack) and grid, an audio tower the
    tiny model never feeds, Qwen2.5-Omni's tokens and template with Qwen3-VL's image processor, a MoE text model."""
    from transformers import (
        Qwen3OmniMoeProcessor,
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    qwen3 = _qwen3_vl()[1]
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *OMNI_TOKENS.values()], OMNI_TOKENS,
                           OMNI_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    processor = Qwen3OmniMoeProcessor(image_processor=qwen3.image_processor, video_processor=qwen3.video_processor,
                                      feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer,
                                      chat_template=OMNI_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=16,
                  spatial_merge_size=2, num_position_embeddings=64, deepstack_visual_indexes=[0])
    audio = dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                 output_dim=64, downsample_hidden_size=16)
    tokens = {f"{kind}_token_id": ids(OMNI_TOKENS[f"{kind}_token"]) for kind in ("image", "video", "audio")}
    tokens.update({f"{kind}_{edge}_token_id": ids(OMNI_TOKENS[f"{kind}_{bound}_token"])
                   for kind in ("vision", "audio") for edge, bound in (("start", "bos"), ("end", "eos"))})
    config = Qwen3OmniMoeThinkerConfig(text_config=text, vision_config=vision, audio_config=audio, **tokens)
    return Qwen3OmniMoeThinkerForConditionalGeneration(config), processor


def _omni(thinker: Callable[[], tuple[torch.nn.Module, object]], model_type: str) -> tuple[torch.nn.Module, object]:
    """A full Omni model (`qwen2_5_omni`, `qwen3_omni_moe`) around the tiny thinker, as its checkpoint saves it: the
    thinker's weights under `thinker.`; its speech output (talker, token2wav) disabled, so they stay unbuilt."""
    from transformers import AutoConfig, AutoModelForMultimodalLM

    inner, processor = thinker()
    config = AutoConfig.for_model(model_type, thinker_config=inner.config.to_dict(), enable_audio_output=False)
    model = AutoModelForMultimodalLM.from_config(config)
    model.thinker = inner
    return model, processor


def _apertus1p5_codes(model: torch.nn.Module, inputs: dict) -> list[torch.Tensor]:
    """Apertus 1.5's VQ codes of the image as a grid, offset into the vocabulary as the model offsets them."""
    height, width = inputs["image_sizes"][0].tolist()
    pixels = inputs["pixel_values"][:1, :, :height, :width]
    codes = model.model.vision_tokenizer.encode(pixels).image_tokens[0]
    return [codes + model.config.image_token_offset]


APERTUS_TOKENS = {"image_token": "<|image|>", "audio_token": "<|audio|>", "boi_token": "<|boi|>",
                  "eoi_token": "<|eoi|>", "image_wrapper_token": "<|img_wrap|>", "eol_token": "<|eol|>",
                  "boa_token": "<|boa|>", "eoa_token": "<|eoa|>"}
APERTUS_TEMPLATE = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>\n", "<|image|>")


def _apertus1p5(codes: int = 64, audio_codes: int = 16):
    """Apertus 1.5: a VQ tokenizer (convolutions only here; the checkpoints' has attention at its 16x16 stage) of 16 px
    cells into `codes` codes, offset into the vocabulary after the text tokens, then `audio_codes` audio codes (a
    WavTokenizer the tiny model never feeds); a text model with xIELU MLPs."""
    from transformers import (
        Apertus1p5Config,
        Apertus1p5ForConditionalGeneration,
        Apertus1p5ImageProcessor,
        Apertus1p5Processor,
    )
    from transformers.models.wavtokenizer.feature_extraction_wavtokenizer import WavTokenizerFeatureExtractor

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>", *APERTUS_TOKENS.values()],
                           APERTUS_TOKENS, APERTUS_TEMPLATE, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Apertus1p5ImageProcessor(size={"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS})
    processor = Apertus1p5Processor(image_processor=image_processor, feature_extractor=WavTokenizerFeatureExtractor(),
                                    tokenizer=tokenizer, chat_template=APERTUS_TEMPLATE)
    text_tokens = len(tokenizer)
    text = dict(vocab_size=text_tokens + codes + audio_codes, hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                bos_token_id=ids("<s>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<pad>"))
    vision = dict(codebook_size=codes, embed_dim=8, latent_channels=8, base_channels=32, channel_multiplier=[1] * 5,
                  num_res_blocks=1, attn_resolutions=[], resolution=256)
    audio = dict(model_type="wavtokenizer_encoder", num_filters=4, upsampling_ratios=[2, 2], hidden_size=8,
                 codebook_size=audio_codes, codebook_dim=8, num_lstm_layers=1)
    config = Apertus1p5Config(text_config=text, vision_config=vision, audio_config=audio,
                              image_token_id=ids("<|image|>"), audio_token_id=ids("<|audio|>"),
                              image_token_offset=text_tokens, audio_token_offset=text_tokens + codes)
    return Apertus1p5ForConditionalGeneration(config), processor


def _emu3_codes(model: torch.nn.Module, inputs: dict) -> list[torch.Tensor]:
    """Emu3's VQ codes of the image as a grid, as the BPE tokens the vocabulary maps them to."""
    codes = model.model.vqmodel.encode(inputs["pixel_values"], inputs["image_sizes"]).image_tokens[0]
    return [model.model.vocabulary_mapping.img2bpe_mapping_tensor[codes].long()]


EMU3_TOKENS = {"image_token": "<image>", "boi_token": "<|image start|>", "eoi_token": "<|image end|>",
               "image_wrapper_token": "<|image token|>", "eof_token": "<|extra_201|>"}


def _emu3(codes: int = 32):
    """Emu3: a VQ-VAE of 8 px cells (three downsamplings, as shipped; 32 channels, attention only in its middle
    block, one frame where the checkpoint repeats the image over 4) into `codes` codes `<|visual token NNNNNN|>`, an
    end-of-line token `<|extra_200|>` after each row, LLaVA-1.5's "USER: ... ASSISTANT:" prompt; a
    200x150 px pixel cap (there 1024x1024)."""
    from transformers import Emu3Config, Emu3ForConditionalGeneration, Emu3ImageProcessor, Emu3Processor

    visual = [f"<|visual token {code:06d}|>" for code in range(codes)]
    tokenizer = _tokenizer(["<|endoftext|>", "<|extra_203|>", "<|extra_204|>", "<|extra_200|>",
                            *EMU3_TOKENS.values(), *visual], EMU3_TOKENS, LLAVA_TEMPLATE,
                           bos_token="<|extra_203|>", eos_token="<|extra_204|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Emu3ImageProcessor(min_pixels=MIN_PIXELS, max_pixels=200 * 150)
    processor = Emu3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=LLAVA_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                bos_token_id=ids("<|extra_203|>"), eos_token_id=ids("<|extra_204|>"), pad_token_id=ids("<|endoftext|>"))
    vq = dict(codebook_size=codes, embed_dim=8, latent_channels=32, base_channels=32, channel_multiplier=[1] * 4,
              num_res_blocks=1, attn_resolutions=[], temporal_downsample_factor=1, hidden_size=32)
    config = Emu3Config(text_config=text, vq_config=vq, vocabulary_map=tokenizer.get_vocab())
    return Emu3ForConditionalGeneration(config), processor


STEP3P7_MARKERS = ["<patch_start>", "<patch_end>", "<patch_newline>", "<im_start>", "<im_end>"]


def _step3p7():
    """Step 3.7 as shipped, tiny: a 224 px global view (there 728) and 112 px crops (there 504), 7 px ViT patches and
    two stride-2 convolutions (28 px per token: 8x8 and 4x4); a MoE text model with sliding-window layers."""
    from transformers import Step3p7Config, Step3p7ForConditionalGeneration, Step3p7ImageProcessor, Step3p7Processor

    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>", "<im_patch>")
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<im_patch>", *STEP3P7_MARKERS],
                           {"image_token": "<im_patch>"}, template, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Step3p7ImageProcessor(size={"height": 224, "width": 224}, patch_size=112, vision_patch_size=7)
    processor = Step3p7Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, moe_intermediate_size=32,
                n_routed_experts=4, num_experts_per_tok=2, share_expert_dim=32, mlp_layer_types=["dense", "sparse"],
                max_position_embeddings=4096, sliding_window=64, eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=224,
                  patch_size=7, mlp_ratio=2.0, max_position_embeddings=1024)
    config = Step3p7Config(vision_config=vision, text_config=text, image_token_id=ids("<im_patch>"))
    return Step3p7ForConditionalGeneration(config), processor


# llava-hf/vip-llava-7b-hf: the Vicuna system line, "###Human: <image>\n{prompt}###Assistant:"
VIPLLAVA_TEMPLATE = (
    "A chat between a curious human and an artificial intelligence assistant.###"
    "{% for message in messages %}{% if message['role'] == 'user' %}Human: {% else %}Assistant: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}###{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _llava_text(tokenizer) -> LlamaConfig:
    """The tiny Llama of the LLaVA-1.5 builds, for `tokenizer`'s "<s>", "</s>" and "<pad>"."""
    ids = tokenizer.convert_tokens_to_ids
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))


def _vipllava():
    """ViP-LLaVA: LLaVA-1.5's processor and CLIP square (48 px / 8 px patches here), the features of several CLIP
    layers (CLS dropped from each) concatenated, layer-normed and projected; the vip-llava chat template."""
    from transformers import VipLlavaConfig, VipLlavaForConditionalGeneration

    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<image>"], {"image_token": "<image>"}, VIPLLAVA_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=VIPLLAVA_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=48, patch_size=8, projection_dim=32)
    config = VipLlavaConfig(vision_config=vision.to_dict(), text_config=_llava_text(tokenizer).to_dict(),
                            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                            vision_feature_layer=[-2, -1, 0])  # real: (-2, -5, -8, -11, 6) of 24 layers
    return VipLlavaForConditionalGeneration(config), processor


def _video_llava():
    """Video-LLaVA's images: its own image processor (shortest edge and center crop, as CLIP's) and processor
    (48 px / 8 px patches here, 224 / 14 there), an image tower (CLIP) apart from the video tower, LLaVA-1.5's chat
    template."""
    from transformers import (
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
        VideoLlavaProcessor,
        VideoLlavaVideoProcessor,
    )

    named = {"image_token": "<image>", "video_token": "<video>"}
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", *named.values()], named, LLAVA_TEMPLATE, bos_token="<s>",
                           eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    pixels = dict(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    processor = VideoLlavaProcessor(image_processor=VideoLlavaImageProcessor(**pixels),
                                    video_processor=VideoLlavaVideoProcessor(**pixels), tokenizer=tokenizer,
                                    patch_size=8, vision_feature_select_strategy="default",
                                    num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=48, patch_size=8, projection_dim=32)
    config = VideoLlavaConfig(vision_config=vision.to_dict(), text_config=_llava_text(tokenizer).to_dict(),
                              image_token_index=ids("<image>"), video_token_index=ids("<video>"),
                              vision_feature_select_strategy="default", vision_feature_layer=-2,
                              image_seq_length=36)
    return VideoLlavaForConditionalGeneration(config), processor


def _git():
    """GIT: CLIP's image processor and a BERT WordPiece tokenizer (the corpus's words, lower-cased) with no chat
    template; a CLIP ViT (48 px / 8 px patches here, 224 / 16 there) whose CLS and 6x6 patch features prefix a
    BERT-style decoder's text.  The LM head's bias, zero at initialisation, is random here, as a trained one is."""
    from transformers import BertTokenizer, GitConfig, GitForCausalLM, GitProcessor

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    split = BertTokenizer(vocab={token: i for i, token in enumerate(specials)}).backend_tokenizer
    words = sorted({word for line in CORPUS for word, _ in split.pre_tokenizer.pre_tokenize_str(line.lower())})
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate([*specials, *words])})
    image_processor = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=48,
                  patch_size=8)
    ids = tokenizer.convert_tokens_to_ids
    config = GitConfig(vision_config=vision, vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=128, max_position_embeddings=512,
                       bos_token_id=ids("[CLS]"), eos_token_id=ids("[SEP]"), pad_token_id=ids("[PAD]"))
    model = GitForCausalLM(config)
    with torch.no_grad():
        model.output.bias.normal_(std=0.02)
    return model, GitProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _sharpen_git(model: torch.nn.Module, factor: float = 30.0) -> None:
    """`scale_norm` on GIT's projector, which ends in a norm (the model's decoder is `model.git`, not `model.model`)."""
    with torch.no_grad():
        model.git.visual_projection.visual_projection[-1].weight.mul_(factor)


def _llava_next_video():
    """LLaVA-NeXT-Video: `_llava_next`'s tiling (CLIP with CLS, five pinpoints) through its own processor, its Vicuna
    template ("USER: <image>\n{prompt} ASSISTANT:", a video "<video>\n"); a video's frames resized (shorter side) and
    centre-cropped to one 48 px tile, 6x6 patches average-pooled to 3x3."""
    from transformers import (
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    next_model, next_processor = _llava_next()
    named = {"image_token": "<image>", "video_token": "<video>"}
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", *named.values()], named, LLAVA_NEXT_VIDEO_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(size={"shortest_edge": NEXT_TILE},
                                                     crop_size={"height": NEXT_TILE, "width": NEXT_TILE}),
        image_processor=next_processor.image_processor, tokenizer=tokenizer, patch_size=NEXT_PATCH,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA_NEXT_VIDEO_TEMPLATE)
    config = next_model.config
    config = LlavaNextVideoConfig(vision_config=config.vision_config.to_dict(),
                                  text_config=_llava_text(tokenizer).to_dict(), image_token_index=ids("<image>"),
                                  video_token_index=ids("<video>"), image_grid_pinpoints=config.image_grid_pinpoints,
                                  vision_feature_select_strategy="default", vision_feature_layer=-2,
                                  image_seq_length=config.image_seq_length)
    return LlavaNextVideoForConditionalGeneration(config), processor


def _mistral_large4():
    """Mistral Large 4: `_mistral3`'s tokens, template, processor and Pixtral encoder; a text model with multi-head
    latent attention, a DeepSeek-style sparse-attention indexer (its top-k over more keys than the prompt has: all
    are read), a dense first layer then MoE, and soft-capped logits."""
    from transformers import MistralLarge4Config, MistralLarge4ForConditionalGeneration

    mistral3, processor = _mistral3()
    config = mistral3.config
    text = dict(vocab_size=config.text_config.vocab_size, hidden_size=64, intermediate_size=128,
                moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                n_routed_experts=4, num_experts_per_tok=2, kv_lora_rank=16, qk_rope_head_dim=16, qk_nope_head_dim=16,
                v_head_dim=16, index_head_dim=16, index_n_heads=2, index_topk=2048, max_position_embeddings=4096,
                bos_token_id=config.text_config.bos_token_id, eos_token_id=config.text_config.eos_token_id,
                pad_token_id=config.text_config.pad_token_id)
    vision = {key: value for key, value in config.vision_config.to_dict().items() if key != "model_type"}
    config = MistralLarge4Config(vision_config={"model_type": "pixtral", **vision}, text_config=text,
                                 image_token_index=config.image_token_index, spatial_merge_size=2)
    return MistralLarge4ForConditionalGeneration(config), processor


# lightonai/LightOnOCR-1B-1025: Qwen's ChatML, an empty system turn, the image's "<|image_pad|>" then the text
LIGHTON_OCR_TEMPLATE = (
    "<|im_start|>system\n<|im_end|>\n{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|image_pad|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _lighton_ocr():
    """LightOnOCR: a Pixtral encoder (14 px patches; the image rounded to whole patches, not merged ones), a 2x2
    patch merger, a Qwen3 text model; a processor that writes one `<|image_pad|>` per merged patch, no separators
    (its break and end tokens are named but unused); a longest edge of 224 px instead of 1540."""
    from transformers import LightOnOcrConfig, LightOnOcrForConditionalGeneration, LightOnOcrProcessor

    named = {"image_token": "<|image_pad|>", "image_break_token": "<|vision_pad|>", "image_end_token": "<|vision_end|>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()], named,
                           LIGHTON_OCR_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = PixtralImageProcessor(size={"longest_edge": MISTRAL3_LONGEST_EDGE}, patch_size=14)
    processor = LightOnOcrProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                    spatial_merge_size=2, chat_template=LIGHTON_OCR_TEMPLATE)
    vision = dict(model_type="pixtral", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, head_dim=16, image_size=MISTRAL3_LONGEST_EDGE, patch_size=14)
    text = dict(model_type="qwen3", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    config = LightOnOcrConfig(vision_config=vision, text_config=text, image_token_id=ids("<|image_pad|>"),
                              spatial_merge_size=2)
    return LightOnOcrForConditionalGeneration(config), processor


# Molmo 2: ChatML (Qwen3's tokens) with "<|image|>" where the image goes; the processor prepends the EOS as BOS
MOLMO2_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|image|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _molmo2():
    """Molmo 2 with 52 px crops of 4 px patches (13x13: odd, as the real 27x27, so the 2x2 pooling pads the last row
    and column), the shipped 4-patch overlap margins and 8 crops at most."""
    from transformers import (
        Molmo2Config,
        Molmo2ForConditionalGeneration,
        Molmo2ImageProcessor,
        Molmo2Processor,
        Molmo2VideoProcessor,
    )

    named = {"image_token": "<|image|>", "video_token": "<|video|>"}
    markers = ["<im_start>", "<im_end>", "<im_patch>", "<im_col>", "<low_res_im_start>", "<im_low>", "<frame_start>",
               "<frame_end>"]
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values(), *markers], named,
                           MOLMO2_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    pixels = dict(size={"height": 52, "width": 52}, patch_size=4)
    processor = Molmo2Processor(image_processor=Molmo2ImageProcessor(**pixels),
                                video_processor=Molmo2VideoProcessor(**pixels), tokenizer=tokenizer,
                                chat_template=MOLMO2_TEMPLATE)
    heads = dict(num_attention_heads=2, num_key_value_heads=2, head_dim=16)
    config = Molmo2Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, image_size=[52, 52],
                           patch_size=4, **heads),
        adapter_config=dict(vision_feature_layer=[-1, -2], hidden_size=32, intermediate_size=64, text_hidden_size=64,
                            **heads),
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=32, vocab_size=len(tokenizer), additional_vocab_size=0,
                         max_position_embeddings=4096, rope_parameters={"rope_type": "default", "rope_theta": 1e4}),
        image_start_token_id=ids("<im_start>"), low_res_image_start_token_id=ids("<low_res_im_start>"),
        image_end_token_id=ids("<im_end>"), image_patch_id=ids("<im_patch>"),
        frame_start_token_id=ids("<frame_start>"), frame_end_token_id=ids("<frame_end>"),
        eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )
    return Molmo2ForConditionalGeneration(config), processor


def _sharpen_molmo2(model: torch.nn.Module, pooled: float = 3000.0, factor: float = 30.0) -> None:
    """Molmo 2's adapter: its pooling attention's output scaled by `pooled` (the SwiGLU projector squares it) and the
    projector's last layer by `factor`.  Randomly initialised, the adapter shrinks the ViT's features to ~1e-9 of the
    embeddings they are added to, so the image would not show in the states at all."""
    adapter = model.model.multi_modal_projector
    with torch.no_grad():
        adapter.image_pooling_2d.o_proj.weight.mul_(pooled)
    scale_projector("multi_modal_projector", factor)(model)


def molmo2_views(high: tuple[int, int]) -> list:
    """Molmo 2's views: the 7x7 low-res overview, then the `high` grid stitched from the crops, both of the whole."""
    return [("overview", (7, 7), (0.0, 0.0, 1.0, 1.0)), ("tile", high, (0.0, 0.0, 1.0, 1.0))]


# Nemotron-3 Nano Omni: ChatML with "<image>" where the image goes (the processor writes "<img>", the image tokens and
# "</img>" in its place)
NEMOTRON_OMNI_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _nemotron_h_omni():
    """Nemotron-3 Nano Omni: its processor (16 px patches, its own patch-grid rule, a 12-441 patch range as Qwen's
    pixel range here), a RADIO tower, a 2x2 pixel shuffle and an MLP projector; a Nemotron-H text model of a Mamba-2
    layer, an attention layer, then a Mamba-2 and an MLP layer, as the checkpoint ends (Mamba-2 and MoE after its
    last attention layer); no audio tower (the processor still needs its feature extractor)."""
    from transformers import (
        NemotronH_Omni_Reasoning_V3,
        NemotronH_Omni_Reasoning_V3_Config,
        NemotronH_Omni_Reasoning_V3ImageProcessor,
        NemotronH_Omni_Reasoning_V3Processor,
        NemotronH_Omni_Reasoning_V3VideoProcessor,
        ParakeetFeatureExtractor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<img>", "</img>", "<video>"]
    tokenizer = _tokenizer(special, {}, NEMOTRON_OMNI_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = NemotronH_Omni_Reasoning_V3ImageProcessor(min_num_patches=12, max_num_patches=441)
    processor = NemotronH_Omni_Reasoning_V3Processor(
        image_processor=image_processor, tokenizer=tokenizer,
        video_processor=NemotronH_Omni_Reasoning_V3VideoProcessor(), feature_extractor=ParakeetFeatureExtractor(),
        chat_template=NEMOTRON_OMNI_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_attention_heads=2,
                num_key_value_heads=1, head_dim=32, layers_block_type=["mamba", "attention", "mamba", "mlp"],
                mamba_num_heads=4, mamba_head_dim=16, ssm_state_size=16, n_groups=1, chunk_size=16,
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=16, image_size=64,
                  max_img_size=512, video_temporal_patch_size=2)
    config = NemotronH_Omni_Reasoning_V3_Config(text_config=text, vision_config=vision, vision_hidden_size=32,
                                                projector_hidden_size=64, image_token_id=ids("<image>"))
    return NemotronH_Omni_Reasoning_V3(config), processor


def _sharpen_nemotron_h_omni(model: torch.nn.Module, factor: float = 30) -> None:
    """`scale_projector` for a model whose projector is its own attribute (it has no `model.model`)."""
    with torch.no_grad():
        model.multi_modal_projector.linear_2.weight.mul_(factor)


def _qwen4_exp():
    """Qwen4-Exp: Qwen3-VL's processor and 16 px patches, Qwen3.5's vision tower; a MoE text model of two hyper-
    connection streams, a Gated DeltaNet layer with n-gram per-layer embeddings (PLE), then a full-attention layer
    with its QSA indexer (a 128-token budget: the tiny prompt is read whole), as the checkpoint's last layer."""
    from transformers import Qwen4ExpConfig, Qwen4ExpForConditionalGeneration

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Qwen2VLImageProcessor(patch_size=16, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen3VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=4096, num_hidden_layers=2, layer_types=["linear_attention", "full_attention"],
                linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
                num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32,
                hc_count=2, hc_lowrank=16, ple_layer_ids=[1], ngram_size=3, heads_per_ngram=2,
                ngram_vocab_size_base=1000, make_ngram_vocab_size_divisible_by=8, indexer_n_heads=2,
                indexer_kv_heads=1, indexer_head_dim=16, indexer_budget=128, indexer_compress_ratio=16,
                rope_parameters={"rope_type": "default", "rope_theta": 1e7, "partial_rotary_factor": 0.5,
                                 "mrope_section": [3, 3, 2], "mrope_interleaved": True},
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64)
    config = Qwen4ExpConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                            video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                            vision_end_token_id=ids("<|vision_end|>"))
    return Qwen4ExpForConditionalGeneration(config), processor


def _cosmos3_edge():
    """Cosmos3 Edge: its processor (GLM-4.1V's resizing and patch order, 16 px patches, one frame per patch) with
    Qwen2-VL's tokens and template, a SigLIP2 tower with interpolated position embeddings, a 2x2 patch merger, and
    a text model with M-RoPE over (t, h, w)."""
    from transformers import (
        Cosmos3EdgeConfig,
        Cosmos3EdgeForConditionalGeneration,
        Cosmos3EdgeImageProcessor,
        Cosmos3EdgeProcessor,
        Cosmos3EdgeVideoProcessor,
    )

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    ids = tokenizer.convert_tokens_to_ids
    image_processor = Cosmos3EdgeImageProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    processor = Cosmos3EdgeProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=Cosmos3EdgeVideoProcessor(), chat_template=CHAT_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [6, 5, 5]},
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=16,
                  num_patches=64, spatial_merge_size=2)
    config = Cosmos3EdgeConfig(text_config=text, vision_config=vision, projector_hidden_size=64,
                               image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                               vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return Cosmos3EdgeForConditionalGeneration(config), processor


# Gemma 4: "<bos><|turn>user\n<|image|>{prompt}<turn|>\n<|turn>model\n"; the processor expands "<|image|>" to
# "<|image>" N x "<|image|>" "<image|>".  It also needs the audio tokens: its input check refuses a tokenizer without
# `boa_token`/`eoa_token` even with no audio (an operator-precedence slip in `validate_inputs`)
GEMMA4_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|turn>{{ 'model' if message['role'] == 'assistant' else "
    "message['role'] }}\n{% for item in message['content'] %}{% if item['type'] == 'image' %}<|image|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}<turn|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|turn>model\n{% endif %}"
)
GEMMA4_NAMED = {"boi_token": "<|image>", "eoi_token": "<image|>", "image_token": "<|image|>", "boa_token": "<|audio>",
                "eoa_token": "<audio|>", "audio_token": "<|audio|>"}
GEMMA4_PATCH = 4  # real: 16 px patches, 3x3 per soft token (48 px cells); here 12 px cells


def _gemma4_parts(processor_cls, image_processor_cls, video_processor_cls, feature_extractor_cls) -> tuple:
    """Gemma 4's tokenizer, processor (the smallest soft-token budget, 70) and text-config arguments: 3 layers, the
    last one KV-shared (as in E2B/E4B, whose shared layers see only the kept positions), soft-capped logits,
    per-layer inputs."""
    tokenizer = _tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", *GEMMA4_NAMED.values()],
                           GEMMA4_NAMED, GEMMA4_TEMPLATE, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    tokenizer.add_bos_token = True  # as Gemma's tokenizer: BOS before every text
    sizes = dict(patch_size=GEMMA4_PATCH, max_soft_tokens=70)
    processor = processor_cls(feature_extractor=feature_extractor_cls(), image_processor=image_processor_cls(**sizes),
                              tokenizer=tokenizer, video_processor=video_processor_cls(**sizes),
                              chat_template=GEMMA4_TEMPLATE, image_seq_length=70)
    ids = tokenizer.convert_tokens_to_ids
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=32, sliding_window=64,
                layer_types=["sliding_attention", "full_attention", "full_attention"], num_kv_shared_layers=1,
                max_position_embeddings=1024, final_logit_softcapping=30.0, bos_token_id=ids("<bos>"),
                eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>"))
    tokens = dict(boi_token_id=ids("<|image>"), eoi_token_id=ids("<image|>"), image_token_id=ids("<|image|>"),
                  video_token_id=ids("<|video|>"), boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"),
                  audio_token_id=ids("<|audio|>"))
    return processor, text, tokens


def _gemma4():
    """Gemma 4: a 2-D-RoPE encoder over 16 px patches (4 px here) with (x, y) position embeddings, average-pooled
    3x3 into soft tokens."""
    from transformers import (
        Gemma4AudioFeatureExtractor,
        Gemma4Config,
        Gemma4ForConditionalGeneration,
        Gemma4ImageProcessor,
        Gemma4Processor,
        Gemma4TextConfig,
        Gemma4VideoProcessor,
        Gemma4VisionConfig,
    )

    processor, text, tokens = _gemma4_parts(Gemma4Processor, Gemma4ImageProcessor, Gemma4VideoProcessor,
                                            Gemma4AudioFeatureExtractor)
    text = Gemma4TextConfig(**text, hidden_size_per_layer_input=16, vocab_size_per_layer_input=text["vocab_size"])
    vision = Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=16, patch_size=GEMMA4_PATCH,
                                position_embedding_size=256)
    config = Gemma4Config(text_config=text, vision_config=vision, audio_config=None, **tokens)
    return Gemma4ForConditionalGeneration(config), processor


def _gemma4_unified():
    """Gemma 4 unified: encoder-free, each 48 px cell's pixels (12 px here) merged by the processor and embedded
    (LayerNorm, dense, factorised (x, y) position embedding) straight into the LM, whose vision tokens attend both
    ways."""
    from transformers import (
        Gemma4UnifiedAudioFeatureExtractor,
        Gemma4UnifiedConfig,
        Gemma4UnifiedForConditionalGeneration,
        Gemma4UnifiedImageProcessor,
        Gemma4UnifiedProcessor,
        Gemma4UnifiedTextConfig,
        Gemma4UnifiedVideoProcessor,
        Gemma4UnifiedVisionConfig,
    )

    processor, text, tokens = _gemma4_parts(Gemma4UnifiedProcessor, Gemma4UnifiedImageProcessor,
                                            Gemma4UnifiedVideoProcessor, Gemma4UnifiedAudioFeatureExtractor)
    vision = Gemma4UnifiedVisionConfig(patch_size=GEMMA4_PATCH, mm_embed_dim=32, output_proj_dims=32,
                                       mm_posemb_size=256)
    config = Gemma4UnifiedConfig(text_config=Gemma4UnifiedTextConfig(**text), vision_config=vision, audio_config=None,
                                 **tokens)
    return Gemma4UnifiedForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_gemma4(model: torch.nn.Module, factor: float = 300.0, damp: float = 0.1) -> None:
    """Make the layout check sharp: the projector `factor` times larger, and the random encoder attention's output
    `damp`ed (its post-attention norm's scale: the norm would undo a smaller output projection), as `_sharpen_gemma3`
    for its SigLIP (at 30 and 0.1 the top-changed cells' share in the region is 0.4-0.7)."""
    scale_projector("embed_vision", factor)(model)
    for layer in model.model.vision_tower.encoder.layers:
        layer.post_attention_layernorm.weight.mul_(damp)


def _qianfan_ocr():
    """Qianfan-OCR: InternVL's tiling and layout (GotOcr2 tiles, the thumbnail last, pixel shuffle 0.5) with its own
    InternViT (drop path, optional q/k norms) and a Qwen3 text model; its chat template writes `<image>`, which the
    processor replaces by `<img>`, the `<IMG_CONTEXT>` tokens and `</img>`.  `_internvl`'s sizes."""
    from transformers import QianfanOCRConfig, QianfanOCRForConditionalGeneration, QianfanOCRProcessor

    template = INTERNVL_TEMPLATE.replace("<IMG_CONTEXT>\n", "<image>\n")
    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>"}
    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", *named.values()], named,
                           template, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    pixels = dict(size={"height": 64, "width": 64}, image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD)
    processor = QianfanOCRProcessor(image_processor=GotOcr2ImageProcessor(**pixels), tokenizer=tokenizer,
                                    image_seq_length=16, chat_template=template)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                  patch_size=8)
    text = dict(model_type="qwen3", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                max_position_embeddings=512, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))
    config = QianfanOCRConfig(vision_config=vision, text_config=text, image_token_id=ids("<IMG_CONTEXT>"),
                              image_seq_length=16, downsample_ratio=0.5)
    return QianfanOCRForConditionalGeneration(config), processor


# CohereForAI/aya-vision-8b and command-a-vision: "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>", the image's
# placeholder, the prompt, "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>" (no preamble)
COHERE_VISION_TEMPLATE = (
    "<BOS_TOKEN>{% for message in messages %}<|START_OF_TURN_TOKEN|><|{{ message['role'].upper() }}_TOKEN|>"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}IMAGE_PLACEHOLDER"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|END_OF_TURN_TOKEN|>"
    "{% endfor %}{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
COHERE_SPECIAL = ["<PAD>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
                  "<|CHATBOT_TOKEN|>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>"]


def _cohere_vision_configs(tokenizer) -> tuple[dict, dict]:
    """(vision, text) configs of Aya Vision and Command A Vision, tiny: SigLIP on 64 px tiles of 8 px patches
    (shuffled 2x2 to 4x4 tokens), a Cohere2 text model (a sliding and a full attention layer)."""
    ids = tokenizer.convert_tokens_to_ids
    vision = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, image_size=64, patch_size=8)
    text = dict(model_type="cohere2", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                layer_types=["sliding_attention", "full_attention"], sliding_window=64, pad_token_id=ids("<PAD>"),
                bos_token_id=ids("<BOS_TOKEN>"), eos_token_id=ids("<|END_OF_TURN_TOKEN|>"))
    return vision, text


def _aya_vision():
    """Aya Vision: GotOcr2's tiles (InternVL's rule) of 64 px (there 364), `TILE_i` / `TILE_GLOBAL` in text before
    each tile's `<|IMG_PATCH|>` tokens, 4x4 per tile (there 13x13)."""
    from transformers import AyaVisionConfig, AyaVisionForConditionalGeneration, AyaVisionProcessor

    template = COHERE_VISION_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<image>")
    tokenizer = _tokenizer([*COHERE_SPECIAL, "<image>"], {}, template, bos_token="<BOS_TOKEN>",
                           eos_token="<|END_OF_TURN_TOKEN|>", pad_token="<PAD>")
    image_processor = GotOcr2ImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = AyaVisionProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8, img_size=64,
                                   downsample_factor=2, chat_template=template)
    vision, text = _cohere_vision_configs(tokenizer)
    config = AyaVisionConfig(vision_config=vision, text_config=text, downsample_factor=2,
                             image_token_index=tokenizer.convert_tokens_to_ids("<|IMG_PATCH|>"))
    return AyaVisionForConditionalGeneration(config), processor


def _cohere2_vision():
    """Command A Vision: its own image processor (the canvas needing the least upscaling) of 64 px tiles (there 512,
    up to 12), `patch_size` 4 tokens a side (there 16), `<|IMG_LINE_BREAK|>` after each tile; Aya's model."""
    from transformers import (
        Cohere2VisionConfig,
        Cohere2VisionForConditionalGeneration,
        Cohere2VisionImageProcessor,
        Cohere2VisionProcessor,
    )

    named = {"boi_token": "<|START_OF_IMG|>", "eoi_token": "<|END_OF_IMG|>", "image_token": "<|IMG_PATCH|>",
             "img_line_break_token": "<|IMG_LINE_BREAK|>"}
    template = COHERE_VISION_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<|IMG_PATCH|>")
    tokenizer = _tokenizer(COHERE_SPECIAL, named, template, bos_token="<BOS_TOKEN>", eos_token="<|END_OF_TURN_TOKEN|>",
                           pad_token="<PAD>")
    image_processor = Cohere2VisionImageProcessor(size={"height": 64, "width": 64}, patch_size=4)
    processor = Cohere2VisionProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    vision, text = _cohere_vision_configs(tokenizer)
    config = Cohere2VisionConfig(vision_config=vision, text_config=text, downsample_factor=2,
                                 alignment_intermediate_size=128,
                                 image_token_id=tokenizer.convert_tokens_to_ids("<|IMG_PATCH|>"))
    return Cohere2VisionForConditionalGeneration(config), processor


def _granite_docling():
    """Granite-Docling: GotOcr2-style tiles of 64 px (there 512; up to 32, 16 a side) in Idefics3's prompt (its
    template and tokens, the sub-image markers as tokens), 4 px patches shuffled 4x4: 4x4 tokens per tile (there
    8x8), DeepStack taps of the one vision layer, a Granite text model with its multipliers and logit scaling."""
    from transformers import GraniteDoclingConfig, GraniteDoclingForConditionalGeneration, GraniteDoclingProcessor
    from transformers.models.granite_docling.image_processing_granite_docling import GraniteDoclingImageProcessor

    special = ["<|end_of_text|>", "<|start_of_role|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
               *MARKER_TOKENS]
    tokenizer = _tokenizer(special, IDEFICS3_NAMED, IDEFICS3_TEMPLATE.replace("<|begin_of_text|>", ""),
                           bos_token="<|end_of_text|>", eos_token="<end_of_utterance>", pad_token="<|end_of_text|>")
    processor = GraniteDoclingProcessor(image_processor=GraniteDoclingImageProcessor(size={"height": 64, "width": 64}),
                                        tokenizer=tokenizer, image_seq_len=16,
                                        chat_template=IDEFICS3_TEMPLATE.replace("<|begin_of_text|>", ""))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                  patch_size=4, out_hidden_size=64, scale_factor=4, deepstack_visual_indexes=[0])
    text = _idefics3_text(tokenizer, "<|end_of_text|>", "<end_of_utterance>", "<|end_of_text|>")
    text.update(model_type="granite_docling_text", embedding_multiplier=12.0, logits_scaling=4.0,
                residual_multiplier=0.25, attention_multiplier=1 / 32)
    config = GraniteDoclingConfig(vision_config=vision, text_config=text,
                                  image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                                  pad_token_id=tokenizer.convert_tokens_to_ids("<|end_of_text|>"))
    return GraniteDoclingForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_granite_docling(model: torch.nn.Module, factor: float = 30.0) -> None:
    """Scale the connector's last layer norm (`scale_projector` cannot: its last linear layer is normed after)."""
    norm = model.model.vision_model.connector.ln_out
    norm.weight.mul_(factor)
    norm.bias.mul_(factor)


GRANITE4_TILE = 64  # Granite 4 Vision here: 64 px CLIP tiles of 8 px patches (8x8), downsampled by 1/2 to 4x4


def _granite4_vision():
    """Granite 4 Vision: LLaVA-NeXT's processor and pinpoints (1x2, 2x1, 2x2, 3x1, 1x3 tiles), CLIP with CLS, layer
    -2, 'default' selection, windowed one-layer Q-Former projectors (the config's default; a dict replaces it whole)
    at `downsample_rate` 2/4 (2x2 queries per 4x4 patches): one DeepStack group (the first vision layer's output,
    into decoder layer 0) and the 4 spatial groups (into layers 0, 0, 1, 1: transformers keeps the last of each
    layer); a Granite text model with its multipliers and logit scaling."""
    from transformers import Granite4VisionConfig, Granite4VisionForConditionalGeneration, Granite4VisionProcessor

    tokenizer = _tokenizer(["<s>", "</s>", "<image>", "<pad>"], {"image_token": "<image>"}, LLAVA_NEXT_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    pinpoints = [[GRANITE4_TILE * h, GRANITE4_TILE * w] for h, w in [(1, 2), (2, 1), (2, 2), (3, 1), (1, 3)]]
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": GRANITE4_TILE},
                                              crop_size={"height": GRANITE4_TILE, "width": GRANITE4_TILE},
                                              image_grid_pinpoints=pinpoints, resample=3, do_pad=True)
    processor = Granite4VisionProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                        vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                        downsample_rate="2/4", chat_template=LLAVA_NEXT_TEMPLATE)
    vision = dict(model_type="clip_vision_model", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, image_size=GRANITE4_TILE, patch_size=8, projection_dim=32)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, embedding_multiplier=12.0,
                logits_scaling=4.0, residual_multiplier=0.25, attention_multiplier=1 / 32, bos_token_id=ids("<s>"),
                eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    config = Granite4VisionConfig(vision_config=vision, text_config=text, image_token_index=ids("<image>"),
                                  image_grid_pinpoints=pinpoints, vision_feature_select_strategy="default",
                                  vision_feature_layer=-2, downsample_rate="2/4", deepstack_layer_map=[[1, 0]],
                                  spatial_target_layers=[0, 0, 1, 1], projector_dropout=0.0,
                                  qformer_config=dict(num_hidden_layers=1, intermediate_size=128,
                                                      cross_attention_frequency=1, use_qformer_text_input=False,
                                                      vocab_size=8, max_position_embeddings=64))
    return Granite4VisionForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_granite4_vision(model: torch.nn.Module, factor: float = 30.0, patches: float = 10.0) -> None:
    """`_sharpen_llava_next` for its projectors: every Q-Former group's output layer scaled by `factor`, the
    patch embedding by `patches`."""
    for projector in [*model.model.layerwise_projectors, *model.model.spatial_projectors]:
        projector.out_linear.weight.mul_(factor)
        projector.out_linear.bias.mul_(factor)
    model.model.vision_tower.embeddings.patch_embedding.weight.mul_(patches)


# Kimi K2.5: "<|im_user|>user<|im_middle|>", the image's "<|media_begin|>image<|media_content|><|media_pad|>
# <|media_end|>" (the processor expands `<|media_pad|>`), the prompt, "<|im_end|>", then
# "<|im_assistant|>assistant<|im_middle|>"
KIMI_TEMPLATE = (
    "{% for message in messages %}<|im_{{ message['role'] }}|>{{ message['role'] }}<|im_middle|>"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|media_begin|>image<|media_content|><|media_pad|><|media_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_assistant|>assistant<|im_middle|>{% endif %}"
)


def _kimi_k25():
    """Kimi K2.5: MoonViT (14 px patches, learned 2-D position embeddings, a 2x2 merge by index) and a projector
    into a DeepSeek-V3 text model (MLA, a dense first layer, then MoE); the processor as shipped (never enlarges,
    pads bottom/right to 28 px), tied LM head."""
    from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration, Kimi_K25ImageProcessor, Kimi_K25Processor
    from transformers.models.kimi_k25.video_processing_kimi_k25 import Kimi_K25VideoProcessor

    special = ["[EOS]", "<|im_user|>", "<|im_assistant|>", "<|im_middle|>", "<|im_end|>", "<|media_begin|>",
               "<|media_content|>", "<|media_end|>", "<|media_pad|>", "<|kimi_k25_video_placeholder|>", "[PAD]"]
    tokenizer = _tokenizer(special, {}, KIMI_TEMPLATE, eos_token="[EOS]", pad_token="[PAD]")
    ids = tokenizer.convert_tokens_to_ids
    processor = Kimi_K25Processor(image_processor=Kimi_K25ImageProcessor(), tokenizer=tokenizer,
                                  video_processor=Kimi_K25VideoProcessor(), chat_template=KIMI_TEMPLATE)
    text = dict(model_type="deepseek_v3", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                n_shared_experts=1, n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1,
                first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=32, qk_rope_head_dim=8, v_head_dim=16,
                qk_nope_head_dim=16, max_position_embeddings=4096,
                eos_token_id=[ids("[EOS]"), ids("<|im_end|>")], pad_token_id=ids("[PAD]"))
    vision = dict(patch_size=14, pos_emb_height=16, pos_emb_width=16, num_attention_heads=2, num_hidden_layers=1,
                  hidden_size=32, intermediate_size=64)
    config = Kimi_K25Config(text_config=text, vision_config=vision, projection_hidden_size=32,
                            image_token_id=ids("<|media_pad|>"), video_token_id=ids("<|kimi_k25_video_placeholder|>"),
                            vision_start_token_id=ids("<|media_begin|>"), vision_end_token_id=ids("<|media_end|>"))
    return Kimi_K25ForConditionalGeneration(config), processor


# Muse Glimmer / Spark (a Llama-4-style template): "<|begin_of_text|><|header_start|>user<|header_end|>\n\n", the
# image's "<|patch|>" (the processor expands it and brackets it with the image's start and end), the prompt,
# "<|eot|>", then "<|header_start|>assistant<|header_end|>\n\n"
MUSE_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}<|header_start|>{{ message['role'] }}<|header_end|>\n\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|patch|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|eot|>{% endfor %}"
    "{% if add_generation_prompt %}<|header_start|>assistant<|header_end|>\n\n{% endif %}"
)


def _muse_glimmer(spark: bool = False):
    """Muse Glimmer (or with `spark` Muse Spark: its vision and processor, a MoE text model, an audio tower): a ViT of
    14 px patches (window and full attention) pixel-shuffled 2x2, an MLP adapter, a projection and a scale-less RMS
    norm into a text model with normed embeddings, sandwich norms, scaled and soft-capped logits; the processor's
    aspect-keeping grid under `max_image_tokens` (here 64)."""
    from transformers import (
        MuseGlimmerConfig,
        MuseGlimmerForConditionalGeneration,
        MuseGlimmerImageProcessor,
        MuseGlimmerProcessor,
        MuseSparkConfig,
        MuseSparkForConditionalGeneration,
        MuseSparkProcessor,
    )
    from transformers.models.muse_glimmer.video_processing_muse_glimmer import MuseGlimmerVideoProcessor

    special = ["<|begin_of_text|>", "<|eot|>", "<|header_start|>", "<|header_end|>", "<|patch|>", "<|image_start|>",
               "<|image_end|>", "<|video|>", "<|vid_frame_separator|>", "<|vid_start|>", "<|vid_end|>", "<|audio|>",
               "<|soft_audio_start|>", "<|soft_audio_end|>", "<|finetune_right_pad|>"]
    tokenizer = _tokenizer(special, {}, MUSE_TEMPLATE, bos_token="<|begin_of_text|>", eos_token="<|eot|>",
                           pad_token="<|finetune_right_pad|>")
    ids = tokenizer.convert_tokens_to_ids
    parts = dict(image_processor=MuseGlimmerImageProcessor(max_image_tokens=64), tokenizer=tokenizer,
                 video_processor=MuseGlimmerVideoProcessor(), chat_template=MUSE_TEMPLATE)
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=64,
                bos_token_id=ids("<|begin_of_text|>"), eos_token_id=ids("<|eot|>"),
                pad_token_id=ids("<|finetune_right_pad|>"))
    vision = dict(patch_size=14, pos_emb_height=4, pos_emb_width=4, max_position_embeddings=16, num_attention_heads=2,
                  num_hidden_layers=2, hidden_size=32, intermediate_size=64)
    tokens = dict(image_token_id=ids("<|patch|>"), video_token_id=ids("<|video|>"), out_hidden_size=128,
                  projector_hidden_size=64)
    if not spark:
        config = MuseGlimmerConfig(text_config=text, vision_config=vision, **tokens)
        return MuseGlimmerForConditionalGeneration(config), MuseGlimmerProcessor(**parts)
    from transformers.models.muse_spark.feature_extraction_muse_spark import MuseSparkFeatureExtractor

    text.update(moe_intermediate_size=32, num_local_experts=4, num_experts_per_tok=2, moe_hidden_size=64,
                mlp_layer_types=["dense", "sparse"])
    audio = dict(patch_sizes=(4, 4), hidden_sizes=(16, 32), depths=(1, 1), num_hidden_layers=2, out_hidden_size=64)
    config = MuseSparkConfig(text_config=text, vision_config=vision, audio_config=audio,
                             audio_token_id=ids("<|audio|>"), **tokens)
    processor = MuseSparkProcessor(feature_extractor=MuseSparkFeatureExtractor(samples_per_token=16), **parts)
    return MuseSparkForConditionalGeneration(config), processor


def _sharpen_muse(model: torch.nn.Module, damp: float = 0.1) -> None:
    """Make the layout check sharp: the projector's scale is undone by the scale-less norm after it, so instead the
    random mixing is `damp`ed where it happens: the ViT's attention output, and each text layer's update (Glimmer: its
    sandwich post-norms, whose centred weights scale by 1 + w; Spark, whose post-norms have no scale that counts: its
    residual gates, which weigh an update by sigmoid(gate / temperature))."""
    with torch.no_grad():
        for layer in model.model.vision_tower.layers:
            layer.attn.proj.weight.mul_(damp)
            layer.attn.proj.bias.mul_(damp)
        for layer in model.model.language_model.layers:
            for gate in (getattr(layer, "post_attention_residual_gate", None),
                         getattr(layer, "post_feedforward_residual_gate", None)):
                if gate is not None:
                    gate.gate.fill_(gate.temperature * math.log(damp / (1 - damp)))
            if not hasattr(layer, "post_attention_residual_gate"):
                for norm in (layer.post_attention_layernorm, layer.post_feedforward_layernorm):
                    norm.weight.fill_(damp - 1.0)


def _glmga():
    """GLMGA: GLM-4.6V's model (the auto map's; there is no GLMGA modeling file) under its own config, and GLM-4.6V's
    processor (the checkpoint would name it; none in the auto map) with GLMGA's image processor, here with
    `patch_expand_factor` 2: sides resized to whole 56 px blocks of 2x2 merged patches.  `_glm46v`'s tokens and
    sizes."""
    from transformers import AutoModelForImageTextToText, Glm46VProcessor, GlmgaConfig, GlmgaImageProcessor
    from transformers.models.glmga.video_processing_glmga import GlmgaVideoProcessor

    glm46v, processor = _glm46v()
    config = glm46v.config.to_dict()
    text, vision = ({key: value for key, value in config[part].items() if key != "model_type"}
                    for part in ("text_config", "vision_config"))
    keys = ("image_token_id", "video_token_id", "image_start_token_id", "image_end_token_id", "video_start_token_id",
            "video_end_token_id")
    image_processor = GlmgaImageProcessor(size=dict(processor.image_processor.size), patch_expand_factor=2)
    processor = Glm46VProcessor(image_processor=image_processor, tokenizer=processor.tokenizer,
                                video_processor=GlmgaVideoProcessor(), chat_template=GLM4V_TEMPLATE)
    config = GlmgaConfig(text_config=text, vision_config=vision, **{key: config[key] for key in keys})
    return AutoModelForImageTextToText.from_config(config), processor


def _glm5_next():
    """GLM-5.3-Flash: GLM-OCR-style vision (14 px patches merged 2x2), a hybrid text model (a linear-attention layer,
    then a sparse indexed-attention one; MLA without RoPE; 2 hyper-connection streams) and its processor, which pads
    the image bottom/right to a canvas of 4-256 merged patches; `_glm4v`'s tokens and template."""
    from transformers import Glm5NextConfig, Glm5NextForConditionalGeneration, Glm5NextImageProcessor, Glm5NextProcessor
    from transformers.models.glm5_next.video_processing_glm5_next import Glm5NextVideoProcessor

    glm4v, processor = _glm4v()
    tokenizer, config = processor.tokenizer, glm4v.config
    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, n_routed_experts=4,
                num_experts_per_tok=2, kv_lora_rank=16, q_lora_rank=32, v_head_dim=16, qk_nope_head_dim=16,
                index_topk=16, index_head_dim=16, index_n_heads=2, linear_head_dim=16, linear_num_heads=2, hc_mult=2,
                layer_types=["linear_attention", "indexed_attention"], max_position_embeddings=4096,
                pad_token_id=config.text_config.pad_token_id, eos_token_id=config.text_config.eos_token_id)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, image_size=56, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, projection_intermediate_size=64)
    tokens = {key: getattr(config, key) for key in ("image_token_id", "video_token_id", "image_start_token_id",
                                                      "image_end_token_id", "video_start_token_id",
                                                      "video_end_token_id")}
    processor = Glm5NextProcessor(image_processor=Glm5NextImageProcessor(min_image_tokens=4, max_image_tokens=256),
                                  tokenizer=tokenizer, video_processor=Glm5NextVideoProcessor(),
                                  chat_template=GLM4V_TEMPLATE)
    model = Glm5NextForConditionalGeneration(Glm5NextConfig(text_config=text, vision_config=vision, **tokens))
    return model, processor


# DeepSeek-VL / Janus: "User: <image_placeholder>\n{prompt}\n\nAssistant:" (Janus: the processor adds <begin_of_image>
# and <end_of_image> around the image tokens)
DEEPSEEK_VL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}User: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image_placeholder>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _deepseek_vl(janus: bool = False, hybrid: bool = False):
    """DeepSeek-VL (or Janus with `janus`): a SigLIP-style encoder at 64 px / 8 px patches (8x8 tokens; 24x24 at
    384 px there), the processor's longest-side resize and pad to the square, a Llama decoder; Janus adds a (tiny,
    unused for understanding) VQ model and <begin_of_image> / <end_of_image> around the image tokens."""
    from transformers import (
        DeepseekVLConfig,
        DeepseekVLForConditionalGeneration,
        DeepseekVLImageProcessor,
        DeepseekVLProcessor,
        JanusConfig,
        JanusForConditionalGeneration,
        JanusImageProcessor,
        JanusProcessor,
    )

    named = {"image_token": "<image_placeholder>", "boi_token": "<begin_of_image>", "eoi_token": "<end_of_image>"}
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", *named.values()], named, DEEPSEEK_VL_TEMPLATE,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    if janus:
        processor = JanusProcessor(image_processor=JanusImageProcessor(size={"height": 64, "width": 64}),
                                   tokenizer=tokenizer, chat_template=DEEPSEEK_VL_TEMPLATE, num_image_tokens=64)
        vision = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=8,
                      projection_dim=64, depth=2, num_image_tokens=64)
        vq = dict(embed_dim=8, num_embeddings=16, latent_channels=32, base_channels=32, channel_multiplier=[1, 1],
                  num_res_blocks=1, num_patches=4, projection_dim=64, image_token_embed_dim=64)
        config = JanusConfig(text_config=text, vision_config=vision, vq_config=vq,
                             image_token_id=ids(named["image_token"]))
        return JanusForConditionalGeneration(config), processor
    if hybrid:  # a SAM encoder of the same square at 64 px / 4 px patches, resized to SigLIP's 8x8 grid
        from transformers import (
            DeepseekVLHybridConfig,
            DeepseekVLHybridForConditionalGeneration,
            DeepseekVLHybridImageProcessor,
            DeepseekVLHybridProcessor,
        )

        square = {"height": 64, "width": 64}
        processor = DeepseekVLHybridProcessor(
            image_processor=DeepseekVLHybridImageProcessor(size=square, high_res_size=square), tokenizer=tokenizer,
            chat_template=DEEPSEEK_VL_TEMPLATE, num_image_tokens=64)
        vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                    image_size=64, patch_size=8, vision_use_head=False)
        high_res = dict(hidden_size=16, output_channels=16, num_hidden_layers=1, num_attention_heads=1, image_size=64,
                        patch_size=4, window_size=8, global_attn_indexes=[0], mlp_dim=32)
        config = DeepseekVLHybridConfig(text_config=text, vision_config=vision, high_res_vision_config=high_res,
                                        image_token_id=ids(named["image_token"]))
        return DeepseekVLHybridForConditionalGeneration(config), processor
    processor = DeepseekVLProcessor(image_processor=DeepseekVLImageProcessor(size={"height": 64, "width": 64}),
                                    tokenizer=tokenizer, chat_template=DEEPSEEK_VL_TEMPLATE, num_image_tokens=64)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=64, patch_size=8, vision_use_head=False)
    config = DeepseekVLConfig(text_config=text, vision_config=vision, image_token_id=ids(named["image_token"]))
    return DeepseekVLForConditionalGeneration(config), processor



def _got_ocr2(chart: bool = False):
    """GOT-OCR 2.0 (or PP-Chart2Table with `chart`: its processor, which expands no placeholder): a SAM encoder at
    128 px / 2 px patches and two stride-2 convolutions: 16x16 tokens as at 1024 px there (the processor's fixed
    `num_image_tokens`, 256, which it does not save), a Qwen2 decoder; the image stretched to the square."""
    from transformers import (
        GotOcr2Config,
        GotOcr2ForConditionalGeneration,
        GotOcr2Processor,
        PPChart2TableConfig,
        PPChart2TableImageProcessor,
        PPChart2TableProcessor,
    )

    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<imgpad>"], {}, None,
                           eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    size = {"height": 128, "width": 128}
    if chart:
        processor = PPChart2TableProcessor(image_processor=PPChart2TableImageProcessor(size=size), tokenizer=tokenizer)
    else:
        processor = GotOcr2Processor(image_processor=GotOcr2ImageProcessor(size=size), tokenizer=tokenizer)
    vision = dict(hidden_size=16, output_channels=16, num_hidden_layers=1, num_attention_heads=1, image_size=128,
                  patch_size=2, window_size=16, global_attn_indexes=[], mlp_dim=32,  # windowed attention only
                  initializer_range=0.02)  # GOT's default, 1e-10, makes a random encoder see no image
    text = dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    config = (PPChart2TableConfig if chart else GotOcr2Config)(vision_config=vision, text_config=text,
                                                               image_token_index=ids("<imgpad>"))
    return GotOcr2ForConditionalGeneration(config), processor



def _chameleon():
    """Chameleon: a VQ-VAE (3 downsamplings: 16x16 codes at 128 px; 32x32 at 512 px there) over the shorter side
    resized to 128 px and center-cropped to 128x128, 16 codes whose BPE tokens `IMGIMG<digits as letters>Z` the
    vocabulary maps, `<racm3:break>` / `<eoss>` around them, and the processor's separator after the prompt."""
    from transformers import (
        ChameleonConfig,
        ChameleonForConditionalGeneration,
        ChameleonImageProcessor,
        ChameleonProcessor,
    )

    codes = 16
    names = ["IMGIMG" + "".join(chr(ord("A") + int(digit)) for digit in str(code)) + "Z" for code in range(codes)]
    named = {"image_token": "<image>", "boi_token": "<racm3:break>", "eoi_token": "<eoss>"}
    tokenizer = _tokenizer(["<s>", "</s>", "<pad>", "<reserved08706>", *named.values(), *names], named, None,
                           bos_token="<s>", eos_token="</s>", pad_token="<pad>", sep_token="<reserved08706>")
    ids = tokenizer.convert_tokens_to_ids
    image_processor = ChameleonImageProcessor(size={"shortest_edge": 128}, crop_size={"height": 128, "width": 128})
    processor = ChameleonProcessor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=256)
    vq = dict(embed_dim=8, num_embeddings=codes, latent_channels=32, resolution=128, base_channels=32,
              channel_multiplier=[1, 1, 1, 1], num_res_blocks=1)
    config = ChameleonConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                             vq_config=vq, vocabulary_map=tokenizer.get_vocab(), bos_token_id=ids("<s>"),
                             eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"))
    return ChameleonForConditionalGeneration(config), processor


@torch.no_grad()
def _sharpen_chameleon(model: torch.nn.Module, factor: float = 30.0) -> None:
    """Make the layout check sharp: the image codes' token embeddings `factor` times larger (they are the image's only
    way into the decoder), and a VQ encoder whose codes are local: its residual branches and attention zeroed, its
    last GroupNorm (per-image statistics: a painted region would shift every code) left out, and the codebook shrunk
    so that the nearest code is the one most aligned with the local feature."""
    codes = torch.tensor(model.model.vocabulary_mapping.image_tokens)
    model.model.embed_tokens.weight[codes] *= factor
    encoder = model.model.vqmodel.encoder
    for module in encoder.modules():
        if type(module).__name__ == "ChameleonVQVAEEncoderResnetBlock":
            module.conv2.weight.zero_()
            module.conv2.bias.zero_()
        elif type(module).__name__ == "ChameleonVQVAEEncoderAttnBlock":
            module.proj_out.weight.zero_()
            module.proj_out.bias.zero_()
    encoder.norm_out = torch.nn.Identity()
    model.model.vqmodel.quantize.embedding.weight.mul_(1e-3)


@dataclass
class Family:
    build: Callable[[], tuple[torch.nn.Module, object]]
    adapter_cls: type[ModelAdapter]
    views: list[tuple[str, tuple[int, int], tuple[float, float, float, float]]]  # (kind, grid, image_box) for WIDE
    sharpen: Callable[[torch.nn.Module], None]  # makes the layout tests' check sharp (`scale_projector`)
    large: tuple[int, int] = (300, 220)  # an image size (width, height) that makes several tiles where the model tiles
    rescales: bool = True  # a scale below 1 changes the tokens (False: the processor resizes the image back)
    # the processor pads the image at the bottom and right to whole cells of its grid: True, or WIDE's `grid_box` at
    # scales 1 and 0.5 where known exactly
    padded: bool | tuple[tuple[float, float, float, float], tuple[float, float, float, float]] = False
    # class E: the VQ codes (as token ids, one (gh, gw) grid per view) the model's own tokenizer makes of the
    # processor's inputs; the layout check then reads the codes' embeddings at the views' positions, where random VQ
    # encoders (their group norms and attention see the whole image) would flip codes far from a painted region
    codes: Callable[[torch.nn.Module, dict], list[torch.Tensor]] | None = None
    # `enlarge`'s views (kind, grid, ...) at scales 1.5 and 2 as the processor's rules predict them, or what the
    # one-line refusal of a scale says (a regex)
    enlarged: dict[float, list | str] = field(kw_only=True)
    enlarge: tuple[int, int] = WIDE  # an image size (width, height) the model sees in more detail at scale 1.5 if any
    # a video (where the adapter takes one): the frames each view merges (Qwen's temporal patch: 2; one view per frame:
    # 1) and each view's grid for WIDE frames
    video_frames: int = 2
    video_grid: tuple[int, int] | None = None


def _one(grid: tuple[int, int]) -> list:
    return [("image", grid, (0.0, 0.0, 1.0, 1.0))]


def tile_views(rows: int, columns: int, grid: tuple[int, int], overview: tuple[int, int] | None = None) -> list:
    """`rows` x `columns` tiles of `grid` tokens partitioning the image, row-major, then an overview of the whole."""
    tiles = [("tile", grid, (r / rows, c / columns, (r + 1) / rows, (c + 1) / columns))
             for r in range(rows) for c in range(columns)]
    return [*tiles, ("overview", overview or grid, (0.0, 0.0, 1.0, 1.0))]


def overview_first(rows: int, columns: int, grid: tuple[int, int], overview: tuple[int, int] | None = None) -> list:
    """An overview of the whole image first (of `grid` tokens unless given), then `rows` x `columns` tiles of `grid`
    tokens, row-major (Ovis2, MiniCPM-V)."""
    *tiles, last = tile_views(rows, columns, grid, overview)
    return [last, *tiles]


MINICPMV_VIEWS = overview_first(1, 2, (5, 3), (3, 5))
MINICPMV_ENLARGED = {1.5: overview_first(2, 2, (3, 5), (3, 5)), 2.0: overview_first(2, 3, (4, 4), (3, 5))}
QWEN_SHARP = scale_projector("visual.merger", 30)
FIXED_TOKENS = "fixed [0-9]+ image tokens"  # the refusal of a scale above 1 where the processor's token count is fixed
FIXED_SQUARE = "fixed [0-9]+ px square"  # the same where the processor stretches any image to a fixed square
FAMILIES = {
    # 126x168 -> 112x168 px / 14 px patches / 2x2 merge; at scale s 112s x 168s px, rounded to 28 px: 168x252, 224x336
    "qwen2_vl": Family(_qwen2_vl, Qwen2VLAdapter, _one((4, 6)), QWEN_SHARP,
                       enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    "qwen2_5_vl": Family(_qwen2_5_vl, Qwen2VLAdapter, _one((4, 6)), QWEN_SHARP,
                         enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # 126x168 -> 128x160 px / 16 px patches / 2x2 merge; at 1.5 192x240 -> 192x256 px (7.5 rounds to 8), at 2 256x320
    "qwen3_vl": Family(_qwen3_vl, Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                       enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    "qwen3_vl_moe": Family(partial(_qwen3_vl, moe=True), Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                           enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # as Qwen2-VL; GLM's sandwich norms add every layer's (mixed) update at full size: a larger projector scale
    "glm4v": Family(_glm4v, Glm4vAdapter, _one((4, 6)), scale_projector("visual.merger", 1e4),
                    enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}, video_grid=(4, 6)),
    # 48 px / 8 px patches, CLS dropped; above 1 the 48 px square fed at 72 and 96 px (position embeddings interpolated)
    "llava": Family(_llava, LlavaAdapter, _one((6, 6)), scale_projector("multi_modal_projector", 100),
                    enlarged={1.5: _one((9, 9)), 2.0: _one((12, 12))}),
    # tiles of 64 px / 8 px patches * 0.5 pixel shuffle; WIDE (4:3) is stretched onto 4x3 tiles, then the thumbnail.
    # Enlarged, a square (canvases 1x1, 2x2, 3x3 tie) gets the larger canvas once its area is over half of it: 64x64
    # px is one tile, 96x96 (9216 px > 8192) and 128x128 (< 18432 for 3x3) 2x2; a video: one tile (4x4) per frame
    "internvl": Family(_internvl, InternVLAdapter, tile_views(3, 4, (4, 4)),
                       scale_projector("multi_modal_projector", 30), large=(256, 128),
                       enlarged={1.5: tile_views(2, 2, (4, 4)), 2.0: tile_views(2, 2, (4, 4))}, enlarge=(64, 64),
                       video_frames=1, video_grid=(4, 4)),
    # an overview, then any-resolution tiles as one grid unpadded to the image (row ends in no view).  60x45 takes the
    # 1x2 canvas (96x48 px), at 1.5 (90x68) the 2x2 one (96x96: grid 12x12 unpadded to 10x12), which it fills at 1.6:
    # 2 would only be shrunk back into it
    "llava_next": Family(_llava_next, LlavaNextAdapter, EXPECTED_VIEWS_NEXT, _sharpen_llava_next, large=MULTI_NEXT,
                         enlarged={1.5: EXPECTED_VIEWS_NEXT, 2.0: "largest canvas of tiles"}, enlarge=(60, 45)),
    # 60x45 at 1.5 (90x68) takes 2x2 tiles of 49 px (grid 12x12 unpadded to 10x12), at 2 (120x90) 2x3 (12x18 -> 12x16);
    # a video: one 3x3 view per frame (the frame squashed to one tile, its 6x6 patches resized bilinearly), a row end
    "llava_onevision": Family(_llava_onevision, LlavaOnevisionAdapter, EXPECTED_VIEWS_ONEVISION, _sharpen_llava_next,
                              large=MULTI_ONEVISION, enlarge=(60, 45), video_frames=1, video_grid=(3, 3),
                              enlarged={1.5: [("overview", (6, 6)), ("tile", (10, 12))],
                                        2.0: [("overview", (6, 6)), ("tile", (12, 16))]}),
    # the long edge resized to 4 tiles, stretched to whole tiles (3x4 for WIDE), then the global image; above 1 the long
    # edge is lifted to 6 and 8 tiles: 288x216 -> 5x6 tiles, 384x288 -> 6x8 (Idefics3; SmolVLM's are twice the size)
    "idefics3": Family(_idefics3, Idefics3Adapter, tile_views(3, 4, (6, 6)), scale_projector("connector", 30),
                       large=(400, 200), rescales=False,
                       enlarged={1.5: tile_views(5, 6, (6, 6)), 2.0: tile_views(6, 8, (6, 6))}),
    "smolvlm": Family(_smolvlm, SmolVLMAdapter, tile_views(3, 4, (6, 6)), scale_projector("connector", 30),
                      large=(400, 200), rescales=False,
                      enlarged={1.5: tile_views(5, 6, (6, 6)), 2.0: tile_views(6, 8, (6, 6))}, video_frames=1,
                      video_grid=(6, 6)),
    # one pooled grid of the image stretched to a square
    "gemma3": Family(_gemma3, Gemma3Adapter, _one((8, 8)), _sharpen_gemma3, rescales=False,
                     enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    # MobileNetV5's 16x16 stride-16 features of the 256 px square pooled 2x2 to 8x8
    "gemma3n": Family(_gemma3n, Gemma3nAdapter, _one((8, 8)), _sharpen_gemma3n, rescales=False,
                      enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    "paligemma": Family(_paligemma, PaliGemmaAdapter, _one((8, 8)), _sharpen_paligemma, rescales=False,
                        enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    # 168x140 px / 28 px merged patches; 400x200 fits 224x112 px; at 1.5 252x189 px (9x7 merged patches, rounded up),
    # at 2 336x252 (12x9), the longest edge lifted
    "mistral3": Family(_mistral3, Mistral3Adapter, _one((5, 6)), scale_projector("multi_modal_projector", 30),
                       large=(400, 200), enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))}),
    # 168x126 px as given (within 240x180), padded to 180x150: 5x6 patches of 30 px, the image in the top-left
    # 126/150 x 168/180 of the grid; 300x220 shrunk to 240x176 (6x8); at 1.5 252x189 px (7x9), at 2 336x252 (9x12), the
    # bound lifted; at 0.5 84x63 px padded to 90x90
    "fuyu": Family(_fuyu, FuyuAdapter, _one((5, 6)), scale_projector("vision_embed_tokens", 30),
                   enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))},
                   padded=((0.0, 0.0, 126 / 150, 168 / 180), (0.0, 0.0, 63 / 90, 84 / 90))),
    # as Qwen3-VL (16 px patches, 2x2 merge); the hybrid text model changes nothing of the layout
    "qwen3_5": Family(_qwen3_5, Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                      enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    "qwen3_5_moe": Family(partial(_qwen3_5, moe=True), Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                          enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # as GLM-4.1V
    "glm46v": Family(_glm46v, Glm4vAdapter, _one((4, 6)), scale_projector("visual.merger", 1e4),
                     enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}, video_grid=(4, 6)),
    "glm4v_moe": Family(partial(_glm46v, moe=True), Glm4vAdapter, _one((4, 6)), scale_projector("visual.merger", 30),
                        enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}, video_grid=(4, 6)),
    # as Qwen2-VL: 126x168 -> 112x168 px / 14 px patches / 2x2 merge
    "ernie4_5_vl_moe": Family(_ernie4_5_vl_moe, Qwen2VLAdapter, _one((4, 6)),
                              scale_norm("resampler_model.after_norm", 30),
                              enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    "paddleocr_vl": Family(_paddleocr_vl, PaddleOCRVLAdapter, _one((4, 6)), scale_projector("projector", 30),
                           enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as Qwen2-VL; EXAONE-4 norms each sublayer's (mixed) output before the residual add: a larger projector scale
    "exaone4_5": Family(_exaone4_5, Qwen2VLAdapter, _one((4, 6)), scale_projector("visual.merger", 100),
                        enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as Qwen3-VL
    "cohere_compass": Family(_cohere_compass, CohereCompassAdapter, _one((4, 5)), QWEN_SHARP,
                             enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    "dots3_note": Family(_dots3_note, Qwen2VLAdapter, _one((4, 6)), scale_projector("vision_tower.merger", 30),
                         enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as InternVL: 3x4 tiles of 4x4 tokens for WIDE, then the thumbnail
    "qianfan_ocr": Family(_qianfan_ocr, InternVLAdapter, tile_views(3, 4, (4, 4)),
                          scale_projector("multi_modal_projector", 30), large=(256, 128),
                          enlarged={1.5: tile_views(2, 2, (4, 4)), 2.0: tile_views(2, 2, (4, 4))}, enlarge=(64, 64)),
    # as InternVL: 3x4 tiles of 4x4 tokens for WIDE, then the thumbnail; SigLIP's attention sharpened as LLaVA-NeXT's
    # 168x126 px, never enlarged, padded to 168x140 / 14 px patches / 2x2 merge: 5x6, the image in its top 126/140;
    # at 1.5 252x189 px padded to 252x196 (7x9), at 2 336x252 (9x12)
    # (at 0.5 84x63 px padded to 84x84: the image in the top 3/4)
    "kimi_k25": Family(_kimi_k25, KimiK25Adapter, _one((5, 6)), scale_projector("mm_projector", 30),
                       enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))},
                       padded=((0.0, 0.0, 126 / 140, 1.0), (0.0, 0.0, 0.75, 1.0))),
    # 168x126 px / 28 px merged patches: 6 x 4.5 ties 4x6 and 5x6 by aspect, the processor takes 4x6 (112x168 px,
    # stretched); at s 112s x 168s px: 168x252 (6x9), 224x336 (8x12), the token cap of 64 lifted
    "muse_glimmer": Family(_muse_glimmer, MuseGlimmerAdapter, _one((4, 6)), _sharpen_muse,
                           enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # 64 px / 8 px SigLIP patches; WIDE letterboxed into the square (the processor's own pad-to-square, done first)
    "deepseek_vl": Family(_deepseek_vl, DeepseekVLAdapter, _one((8, 8)), scale_projector("aligner", 30),
                          enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    "deepseek_vl_hybrid": Family(partial(_deepseek_vl, hybrid=True), DeepseekVLHybridAdapter, _one((8, 8)),
                                 scale_projector("aligner", 30), enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    "janus": Family(partial(_deepseek_vl, janus=True), JanusAdapter, _one((8, 8)), scale_projector("aligner", 30),
                    enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    # 128 px / 2 px SAM patches, two stride-2 convolutions; WIDE stretched to the square
    "got_ocr2": Family(_got_ocr2, GotOcr2Adapter, _one((16, 16)), scale_projector("multi_modal_projector", 30),
                       rescales=False, enlarged={1.5: FIXED_SQUARE, 2.0: FIXED_SQUARE}),
    "pp_chart2table": Family(partial(_got_ocr2, chart=True), PPChart2TableAdapter, _one((16, 16)),
                             scale_projector("multi_modal_projector", 30), rescales=False,
                             enlarged={1.5: FIXED_SQUARE, 2.0: FIXED_SQUARE}),
    # 16x16 VQ codes of the 128 px center crop of the shorter side resized to 128 px: WIDE's central 126x126
    "chameleon": Family(_chameleon, ChameleonAdapter, [("image", (16, 16), (0.0, 0.125, 1.0, 0.875))],
                        _sharpen_chameleon, rescales=False, enlarged={1.5: FIXED_TOKENS, 2.0: FIXED_TOKENS}),
    "muse_spark": Family(partial(_muse_glimmer, spark=True), MuseGlimmerAdapter, _one((4, 6)),
                         _sharpen_muse, enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as GLM-4.1V, in 56 px blocks: 126x168 -> 112x168 px (4x6); at 1.5 168x252 -> 168x224 (6x8: 4.5 blocks round
    # to 4), at 2 224x336 (8x12)
    "glmga": Family(_glmga, GlmgaAdapter, _one((4, 6)), scale_projector("visual.merger", 1e4),
                    enlarged={1.5: _one((6, 8)), 2.0: _one((8, 12))}),
    # as Kimi K2.5: 168x126 px, never enlarged, padded to 168x140 (5x6), the image in its top 126/140; at 1.5
    # 252x189 px padded to 252x196 (7x9), at 2 336x252 (9x12); at 0.5 84x63 px padded to 84x84
    "glm5_next": Family(_glm5_next, Glm5NextAdapter, _one((5, 6)), scale_projector("visual.merger", 30),
                        enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))},
                        padded=((0.0, 0.0, 126 / 140, 1.0), (0.0, 0.0, 0.75, 1.0))),
    "aya_vision": Family(_aya_vision, AyaVisionAdapter, tile_views(3, 4, (4, 4)), _sharpen_llava_next, large=(256, 128),
                         enlarged={1.5: tile_views(2, 2, (4, 4)), 2.0: tile_views(2, 2, (4, 4))}, enlarge=(64, 64)),
    # the canvas needing the least upscaling: WIDE (168x126) on 3x2 tiles (192x128 px); at 1.5 (252x189) 4x3 (256x192),
    # which it fills at 1.52; at 2 the same 4x3, the image shrunk into them (no canvas of 12 tiles holds it)
    "cohere2_vision": Family(_cohere2_vision, Cohere2VisionAdapter, tile_views(2, 3, (4, 4)), _sharpen_llava_next,
                             enlarged={1.5: tile_views(3, 4, (4, 4)), 2.0: tile_views(3, 4, (4, 4))}),
    # InternVL's rule on 64 px tiles: WIDE (4:3) 3x4 tiles, then the global image; a 64 px square one tile (no global
    # image), 2x2 at 1.5 and 2 (its area over half of 2x2 tiles, not of 3x3)
    "granite_docling": Family(_granite_docling, GraniteDoclingAdapter, tile_views(3, 4, (4, 4)),
                              _sharpen_granite_docling, large=(256, 128),
                              enlarged={1.5: tile_views(2, 2, (4, 4)), 2.0: tile_views(2, 2, (4, 4))},
                              enlarge=(64, 64)),
    # LLaVA-NeXT's layout at half the side: WIDE on 2x2 tiles (128x128 canvas, the image 128x96 centred), grid 8x8
    # unpadded to 6x8 (exactly the image), the base image 4x4; 80x60 on 1x2 tiles, at 1.5 (120x90) 2x2 (6x8), which
    # it fills at 1.6: 2 would only be shrunk back into it
    "granite4_vision": Family(_granite4_vision, Granite4VisionAdapter,
                              [("overview", (4, 4), (0.0, 0.0, 1.0, 1.0)), ("tile", (6, 8), (0.0, 0.0, 1.0, 1.0))],
                              _sharpen_granite4_vision, large=MULTI_NEXT, enlarge=(80, 60),
                              enlarged={1.5: [("overview", (4, 4)), ("tile", (6, 8))], 2.0: "largest canvas of tiles"}),
    # 168x126 -> 108x84 px (the most 12 px cells a 70-token budget allows) -> 7x9 soft tokens; at s the processor's
    # size times s in whole cells, fed with its resize off: 162x126 px (13.5 cells round to 14, 10.5 to 10), 216x168
    "gemma4": Family(_gemma4, Gemma4Adapter, _one((7, 9)), _sharpen_gemma4,
                     enlarged={1.5: _one((10, 14)), 2.0: _one((14, 18))}),
    # as Gemma 4, the cells' pixels embedded directly
    "gemma4_unified": Family(_gemma4_unified, Gemma4Adapter, _one((7, 9)), scale_projector("embed_vision", 30),
                             enlarged={1.5: _one((10, 14)), 2.0: _one((14, 18))}),
    "cosmos3_omni": Family(_cosmos3_omni, Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                           enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # as Qwen3-VL; LFM3's sandwich norms add every layer's (mixed) update at full size: a larger projector scale
    # 168x126 -> 192x128 px: 12x8 patches of 16 px (each side's patches rounded up, then made even) / 2x2 pixel
    # shuffle; at scale s 192s x 128s px: 288x192, 384x256
    "nemotron_h_omni": Family(_nemotron_h_omni, NemotronHOmniAdapter, _one((4, 6)), _sharpen_nemotron_h_omni,
                              enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as Qwen3-VL
    "qwen4_exp": Family(_qwen4_exp, Qwen4ExpAdapter, _one((4, 5)), QWEN_SHARP,
                        enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # as GLM-4.1V with one frame per patch: 168x126 -> 160x128 px / 16 px patches / 2x2 merge; at 1.5 240x192, at 2
    # 320x256
    "cosmos3_edge": Family(_cosmos3_edge, Cosmos3EdgeAdapter, _one((4, 5)), scale_projector("projector", 30),
                           enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # the overview (140x84 px: 3x5 tokens) first, then 1x2 slices of 84x140 px (5x3 tokens each); enlarged, more
    # slices of about 112x112 px: at 1.5 (252x189) 2x2 of 3x5 tokens, at 2 (336x252) 2x3 of 4x4
    "minicpmv4_6": Family(_minicpmv, MiniCPMVAdapter, MINICPMV_VIEWS, scale_projector("merger", 30),
                          enlarged=MINICPMV_ENLARGED),
    # as MiniCPM-V 4.6 (its image processor); Canvas M-RoPE places the tokens on the image, not their order
    "minicpmv4_7": Family(partial(_minicpmv, "minicpmv4_7"), MiniCPMVAdapter, MINICPMV_VIEWS,
                          scale_projector("merger", 30), enlarged=MINICPMV_ENLARGED),
    # as MiniCPM-V 4.6 in "4x" mode (a token per 2x2 patches): the overview 126x98 px (7x9 tokens), slices 10x6;
    # at 1.5 2x2 slices of 7x9 tokens, at 2 2x3 of 8x7
    "minicpm_ocr": Family(partial(_minicpmv, "minicpm_ocr"), MiniCPMVAdapter, overview_first(1, 2, (10, 6), (7, 9)),
                          scale_projector("merger", 30), enlarged={1.5: overview_first(2, 2, (7, 9), (7, 9)),
                                                                   2.0: overview_first(2, 3, (8, 7), (7, 9))}),
    # the image squashed to one 52 px crop (13x13 patches pooled 2x2 into 7x7, the last row and column half padding),
    # then the stitched canvas: WIDE takes 2x3 crops (72x92 px: 18x23 patches -> 9x12); 60x45 takes 1x2 (13x18 ->
    # 7x9), at 1.5 (90x68) 2x3 (9x12), at 2 (120x90) 2x4 (18x28 -> 9x14)
    "molmo2": Family(_molmo2, Molmo2Adapter, molmo2_views((9, 12)), _sharpen_molmo2, enlarge=(60, 45),
                     enlarged={1.5: molmo2_views((9, 12)), 2.0: molmo2_views((9, 14))}),
    # as LLaVA-1.5 (48 px / 8 px patches, CLS dropped from each of the layers concatenated) without scales above 1
    # (its vision tower gets no `interpolate_pos_encoding`); Video-LLaVA's images the same
    "vipllava": Family(_vipllava, VipLlavaAdapter, _one((6, 6)), scale_projector("multi_modal_projector", 100),
                       enlarged={1.5: "interpolate_pos_encoding", 2.0: "interpolate_pos_encoding"}),
    "video_llava": Family(_video_llava, VideoLlavaAdapter, _one((6, 6)), scale_projector("multi_modal_projector", 100),
                          enlarged={1.5: "interpolate_pos_encoding", 2.0: "interpolate_pos_encoding"}),
    # as LLaVA-1.5 (48 px / 8 px patches, CLS in no view), the features prefixing the text; above 1 the square fed at
    # 72 and 96 px (position embeddings interpolated)
    "git": Family(_git, GitAdapter, _one((6, 6)), _sharpen_git, enlarged={1.5: _one((9, 9)), 2.0: _one((12, 12))}),
    # as LLaVA-NeXT (images); a video: one 3x3 view per frame (the tile's 6x6 patches pooled 2x2)
    "llava_next_video": Family(_llava_next_video, LlavaNextAdapter, EXPECTED_VIEWS_NEXT, _sharpen_llava_next,
                               large=MULTI_NEXT, enlarged={1.5: EXPECTED_VIEWS_NEXT, 2.0: "largest canvas of tiles"},
                               enlarge=(60, 45), video_frames=1, video_grid=(3, 3)),
    # as Mistral 3
    "mistral_large4": Family(_mistral_large4, Mistral3Adapter, _one((5, 6)),
                             scale_projector("multi_modal_projector", 30), large=(400, 200),
                             enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))}),
    # 168x126 -> 168x126 px (whole 14 px patches) / 28 px merged patches: 4x6, the last row of patches dropped (the grid
    # shows 112 of 126 px); at 1.5 252x189 -> 252x196 px (7x9), at 2 336x252 (9x12)
    "lighton_ocr": Family(_lighton_ocr, LightOnOcrAdapter, [("image", (4, 6), (0.0, 0.0, 112 / 126, 1.0))],
                          scale_projector("vision_projection", 30), large=(400, 200),
                          enlarged={1.5: _one((7, 9)), 2.0: _one((9, 12))}),
    "lfm3_vl": Family(_lfm3_vl, Lfm3VlAdapter, _one((4, 5)), scale_projector("multi_modal_projector", 300),
                      enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # WIDE is over twice `max_image_tokens`' pixels: 3x2 tiles (the 4x3 canvas is past `max_tiles`), then the thumbnail
    # smart-resized to 32x24 px; (400, 200) 4x2 tiles (2:1 ties with 2x1, the larger taken: the image's area is over
    # half of it) and a 5x2 thumbnail.  (40, 30) is one grid of 3x4; at 1.5 and 2 (60x45, 80x60) it is tiled as WIDE
    "lfm2_vl": Family(_lfm2_vl, Lfm2VlAdapter, tile_views(2, 3, (4, 4), (3, 4)), _sharpen_lfm2_vl,
                      large=(400, 200), enlarge=(40, 30),
                      enlarged={1.5: tile_views(2, 3, (4, 4), (3, 4)), 2.0: tile_views(2, 3, (4, 4), (3, 4))}),
    # as Qwen2-VL; HyperCLOVA X's post-norms add every layer's (mixed) update at full size: a larger projector scale
    "hyperclovax_vision_v2": Family(_hyperclovax_vision_v2, HyperCLOVAXVisionV2Adapter, _one((4, 6)),
                                    scale_projector("projector", 300),
                                    enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as Qwen2-VL; at 30 its random layers' mixing leaves a contrast of 1.5-2.3 only: a larger projector scale
    "minimax_m3_vl": Family(_minimax_m3_vl, Qwen2VLAdapter, _one((4, 6)), scale_projector("multi_modal_projector", 300),
                            enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as GLM-4.1V
    "glm_ocr": Family(_glm_ocr, Glm4vAdapter, _one((4, 6)), scale_projector("visual.merger", 1e4),
                      enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # 126x168 -> 128x160 px / 16 px patches / 2x2 merge, each row plus a newline slot, begin and end slots; at 1.5
    # 192x256 px, at 2 256x320
    "hunyuan_vl": Family(_hunyuan_vl, HunYuanVLAdapter, _one((4, 5)),
                         scale_norm("vision_tower.patch_merger.after_rms", 30),
                         enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # as HunyuanOCR without the begin and end slots
    "hy_v4_vl": Family(_hy_v4_vl, HunYuanVLAdapter, _one((4, 5)), scale_projector("vision_tower.patch_merger", 30),
                       enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # 126x168 -> 126x168 px / 14 px patches, unmerged; at 1.5 189x252 -> 196x252 px (13.5 rounds to 14), at 2 252x336
    "video_llama_3": Family(_video_llama_3, VideoLlama3Adapter, _one((9, 12)), scale_projector("projector", 30),
                            enlarged={1.5: _one((14, 18)), 2.0: _one((18, 24))}),
    # 168x126 px as given, padded to 200x160: 4x5 cells of 40 px, the image in the top-left 0.7875 x 0.84 of the grid;
    # at 1.5 252x189 px (5x7 cells), at 2 336x252 (7x9)
    "inkling2": Family(_inkling2, Inkling2Adapter, _one((4, 5)), _sharpen_inkling2, padded=True,
                       enlarged={1.5: _one((5, 7)), 2.0: _one((7, 9))}),
    "inkling2_loop": Family(partial(_inkling2, loop=True), Inkling2Adapter, _one((4, 5)), _sharpen_inkling2,
                            padded=True,
                            enlarged={1.5: _one((5, 7)), 2.0: _one((7, 9))}),
    # 168x126 px as given, 4 rows (126 / 40, rounded up) and 168 // 40 + 1 = 5 columns; at 1.5 252x189 px (5x7 cells),
    # at 2 336x252 (7x9)
    "inkling_mm_model": Family(_inkling, InklingAdapter, _one((4, 5)), _sharpen_inkling2, padded=True,
                               enlarged={1.5: _one((5, 7)), 2.0: _one((7, 9))}),
    # the thumbnail, then the fewest 112 px tiles that cover 90% of the image: 2x2 for WIDE, as transformers' rule gives
    # them (its covering grid's rows and columns swapped: 3 rows of 2 for 252x189 px at 1.5, 3x3 at 2)
    # as Qwen2-VL
    "qwen2_5_omni_thinker": Family(_qwen2_5_omni_thinker, Qwen2VLAdapter, _one((4, 6)), QWEN_SHARP,
                                   enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    # as Qwen3-VL
    "qwen3_omni_moe_thinker": Family(_qwen3_omni_moe_thinker, Qwen2VLAdapter, _one((4, 5)), QWEN_SHARP,
                                     enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # the full checkpoints: their thinkers as above
    "qwen2_5_omni": Family(partial(_omni, _qwen2_5_omni_thinker, "qwen2_5_omni"), Qwen2VLAdapter, _one((4, 6)),
                           lambda model: QWEN_SHARP(model.thinker), enlarged={1.5: _one((6, 9)), 2.0: _one((8, 12))}),
    "qwen3_omni_moe": Family(partial(_omni, _qwen3_omni_moe_thinker, "qwen3_omni_moe"), Qwen2VLAdapter,
                             _one((4, 5)), lambda model: QWEN_SHARP(model.thinker),
                             enlarged={1.5: _one((6, 8)), 2.0: _one((8, 10))}),
    # 126x168 -> 128x160 px / 16 px cells, one code each; at 1.5 192x240 px, at 2 256x320
    "apertus1p5": Family(_apertus1p5, Apertus1p5Adapter, _one((8, 10)), lambda model: None, codes=_apertus1p5_codes,
                         enlarged={1.5: _one((12, 15)), 2.0: _one((16, 20))}),
    # 168x126 -> 168x128 px / 8 px cells, one code each (and an end-of-line slot per row); at 1.5 252x192 px, at 2
    # 336x256, each past the tiny processor's 200x150 px cap, which the adapter lifts for that call
    "emu3": Family(_emu3, Emu3Adapter, _one((16, 21)), lambda model: None, codes=_emu3_codes,
                   enlarged={1.5: _one((24, 32)), 2.0: _one((32, 42))}),
    # WIDE fits the 224 px global view and is not elongated: no crops, the image squashed onto the square (8x8); 300x220
    # px takes 2x3 windows of 112 px (the image resized to 336x224); at 1.5 252x189 px, 2x3 (336x224), at 2 336x252, 3x3
    "step3p7": Family(_step3p7, Step3p7Adapter, _one((8, 8)), scale_projector("multi_modal_projector", 30),
                      rescales=False,
                      enlarged={1.5: tile_views(2, 3, (4, 4), (8, 8)), 2.0: tile_views(3, 3, (4, 4), (8, 8))}),
    # 128 px crops: WIDE fits 2x1 crops (256x128 canvas), resized to 170x128 and padded white; the stitched grid keeps
    # the 16x22 useful tokens (of 16x32), then the global 16x16 grid of the padded canvas; at 1.5 (252x189) 2x2 crops,
    # 24x32 useful; at 2 (336x252) 3x2, 32x43 useful
    "phi4_multimodal": Family(_phi4_multimodal, Phi4MultimodalAdapter,
                              [("tile", (16, 22), (0.0, 0.0, 1.0, 1.0)), ("overview", (16, 16), (0.0, 0.0, 1.0, 1.0))],
                              scale_projector("embed_tokens_extend.image_embed.img_projection_down", 30),
                              enlarged={1.5: [("tile", (24, 32)), ("overview", (16, 16))],
                                        2.0: [("tile", (32, 43)), ("overview", (16, 16))]}),
    # the 4:3 image stretched onto 3x4 tiles of 64 px (2x2 tokens each: one 6x8 grid), then the global 4x4 grid, the
    # image letterboxed into it; the canvas follows the aspect ratio only (a 0.5 scale is stretched back onto it). A
    # square takes 2x2 tiles until its area is over half of 3x3 tiles': 96 px 2x2, 144 and 192 px 3x3
    "unlimited_ocr": Family(_unlimited_ocr, UnlimitedOcrAdapter,
                            [("tile", (6, 8), (0.0, 0.0, 1.0, 1.0)), ("overview", (4, 4), (0.0, 0.0, 1.0, 1.0))],
                            scale_projector("multi_modal_projector", 30), rescales=False, enlarge=(96, 96),
                            enlarged={1.5: [("tile", (6, 6)), ("overview", (4, 4))],
                                      2.0: [("tile", (6, 6)), ("overview", (4, 4))]}),
    "ovis2": Family(_ovis2, Ovis2Adapter, overview_first(2, 2, (4, 4)), _sharpen_ovis2,
                    enlarged={1.5: overview_first(3, 2, (4, 4)), 2.0: overview_first(3, 3, (4, 4))}),
    # WIDE fits only the 3x2 canvas of at most 6 tiles of 64 px (192x128 px): the thumbnail, then 2 rows of 3 tiles,
    # each 8x8 patches pooled to 4x4; a larger input can only take a smaller canvas
    "perception_lm": Family(_perception_lm, PerceptionLMAdapter, overview_first(2, 3, (4, 4)),
                            scale_projector("multi_modal_projector", 30),
                            enlarged={1.5: "largest canvas of tiles", 2.0: "largest canvas of tiles"}),
}


def make_image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def build_adapter(name: str, sharp: bool = False) -> ModelAdapter:
    """The family's tiny random model in its adapter; with `sharp`, its projector scaled for the layout tests."""
    torch.manual_seed(0)
    model, processor = FAMILIES[name].build()
    if sharp:
        FAMILIES[name].sharpen(model)
    return ADAPTERS[model.config.model_type](model.float(), processor)


def foreign_hooks(model: torch.nn.Module) -> list[str]:
    """Forward (pre-)hooks on any module other than the output-recording ones transformers installs itself."""
    return [f"{name}: {hook.__qualname__}" for name, module in model.named_modules()
            for hook in [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
            if "output_capturing_hook" not in hook.__qualname__]



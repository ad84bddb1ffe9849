"""Greedy captioning with any chat-template MLLM processor (used by `caption` and quality checks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image


def chat_text(processor, prompt: str, answer: str | None = None, with_image: bool = True) -> str:
    """The chat-formatted text of one user turn (image + prompt), with the answer appended if given."""
    content = [{"type": "image"}] if with_image else []
    messages = [{"role": "user", "content": [*content, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    return text if answer is None else text + answer


@torch.inference_mode()
def greedy_captions(model, processor, images: Sequence[Image.Image], prompt: str,
                    max_new_tokens: int = 64) -> list[str]:
    """Greedy answers for a batch of images to the same prompt."""
    processor.tokenizer.padding_side = "left"
    inputs = processor(images=list(images), text=[chat_text(processor, prompt)] * len(images),
                       return_tensors="pt", padding=True).to(model.device)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = out[:, inputs["input_ids"].shape[1]:]
    return [t.strip() for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]

"""Train the bundled model: a small Qwen2-VL on synthetic scenes, plain next-token loss on the answer.

No auxiliary loss touches localisation or the vision tokens: whatever the explanation methods find
in this model was learnt only from answering.  A run trains the language model on text first, then
the vision tower against the frozen language model, then both (docs/MODEL.md); inputs vary in
resolution (long side 56-336 px) so the model works at several scales, and the number of objects
grows over training (a curriculum).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.captioning import chat_text, greedy_captions
from mllm_explain.data.synth import (
    CATEGORIES, COLOURS, DEFAULT_PROMPT, NUMBER_WORDS, PLURALS, iter_scenes, random_size, render_scene,
    scene_rng,
)
from mllm_explain.evaluation.caption_quality import score_caption, summarise
from mllm_explain.evaluation.pointing import pointing_game
from mllm_explain.training.build import build_config, build_processor, build_tokenizer

# Curriculum (fraction of steps at which a stage ends, most objects, object area range, image long
# side in px, batch, share of "what shapes" questions): object-centred crops first -- one large
# object filling much of a small image, so the vision tower learns what each category looks like
# cheaply -- then scenes of growing size and crowding with the dataset's own object sizes.
STAGES = (
    (0.2, 1, (0.25, 0.5), (56, 84), 64, 0.5),
    (0.35, 2, (0.1, 0.5), (84, 168), 32, 0.4),
    (0.6, 3, (0.03, 0.4), (112, 280), 16, 0.3),
    (1.0, 5, (0.03, 0.4), (112, 336), 16, 0.2),
)
# A second instruction task, also plain next-token loss on the answer: naming the objects alone.  In
# a caption the noun is one token among ~15 whose colour and position words the vision tower can
# serve from per-patch colour alone; a short answer of nouns makes what each object is the signal.
SHAPES_PROMPT = "What shapes are in this image?"
# Text-only tasks, ordinary language-model data: repeat a caption, or write the caption of a scene
# given as a list of its objects ("Objects: red star, blue circle.").  They give the language model
# what a pretrained LLM brings to a real MLLM -- circuits that read a word in the context and write
# its own (tied) unembedding direction -- before it sees any image.  The vision tower is then trained
# with the language model frozen (as in Qwen2-VL's first stage and LLaVA's alignment stage), so it
# learns to hand the language model vision tokens it already knows how to talk about, and only
# then is everything trained together.  No loss touches the vision tokens or localisation.
REPEAT_PROMPT = "Repeat this text: "
LIST_PROMPT = "Objects: "
TEXT_SHARE = 0.15  # share of text-only items once images are in the batches
PROMPTS = (DEFAULT_PROMPT, "Write a caption for this image:", "What do you see in this image?")
EXTRA_TEXT = (
    "Write a one-sentence caption for this image:",
    "Write a one-sentence caption for this image in around two sentences:",
    "Write a one-sentence caption for this image in around three sentences:",
    "small large also there is are a an the of in to left right above below top bottom center image",
    "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n",
)


def tokenizer_corpus(n_captions: int = 400) -> list[str]:
    """Captions of small scenes plus every vocabulary word and the prompts the tools use."""
    captions = [s.caption for s in iter_scenes(n_captions, seed=12345, split="train")]
    words = [*CATEGORIES, *PLURALS.values(), *COLOURS, *NUMBER_WORDS.values()]
    return captions + [" ".join(words)] * 20 + [*PROMPTS, SHAPES_PROMPT, REPEAT_PROMPT, LIST_PROMPT] * 20 + list(EXTRA_TEXT) * 20


def shapes_answer(scene) -> str:
    """'a star, two circles and a ring.': the objects left to right, by category noun and count."""
    groups: dict[str, int] = {}
    for obj in sorted(scene.objects, key=lambda o: o.center[0]):
        groups[obj.category] = groups.get(obj.category, 0) + 1
    phrases = [(f"{NUMBER_WORDS[n]} {PLURALS[c]}" if n > 1 else ("an " if c[0] in "aeiou" else "a ") + c)
               for c, n in groups.items()]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return listed[0].upper() + listed[1:] + "."


def object_list(scene) -> str:
    """'red star, large blue circle.': the objects left to right by colour and noun (text-only task)."""
    return ", ".join(f"{obj.colour} {obj.category}" for obj in sorted(scene.objects, key=lambda o: o.center[0])) + "."


def _text_item(rng: np.random.Generator, processor, scene) -> str:
    prompt = REPEAT_PROMPT + scene.caption if rng.random() < 0.5 else LIST_PROMPT + object_list(scene)
    return chat_text(processor, prompt, scene.caption + "<|im_end|>", with_image=False)


def _batch(rng: np.random.Generator, processor, batch_size: int, max_objects: int, areas: tuple[float, float],
           sizes: tuple[int, int], shapes_share: float, text_share: float = TEXT_SHARE):
    images, texts = [], []
    for _ in range(batch_size):
        low, high = sizes
        long_side = int(rng.integers(low, high + 1))
        width, height = random_size(rng, int(long_side / 1.6), long_side)
        scene = render_scene(rng, size=(width, height), max_objects=max_objects, area_range=areas)
        if rng.random() < text_share:
            texts.append(_text_item(rng, processor, scene))
            continue
        images.append(Image.fromarray(scene.image))
        if rng.random() < shapes_share:
            texts.append(chat_text(processor, SHAPES_PROMPT, shapes_answer(scene) + "<|im_end|>"))
        else:
            texts.append(chat_text(processor, str(rng.choice(PROMPTS)), scene.caption + "<|im_end|>"))
    processor.tokenizer.padding_side = "right"
    inputs = processor(images=images or None, text=texts, return_tensors="pt", padding=True)
    labels = inputs["input_ids"].clone()
    # Loss on the answer only: mask everything up to the newline that ends "<|im_start|>assistant\n".
    start, newline = processor.tokenizer.convert_tokens_to_ids(["<|im_start|>", "Ċ"])
    for row, ids in enumerate(inputs["input_ids"]):
        last_start = (ids == start).nonzero().max().item()
        answer_start = last_start + 1 + (ids[last_start + 1:] == newline).nonzero().min().item() + 1
        labels[row, :answer_start] = -100
    labels[inputs["attention_mask"] == 0] = -100
    return inputs, labels


def evaluate_quality(model, processor, n: int, seed: int, split: str = "val", batch: int = 16) -> dict[str, float]:
    scenes = list(iter_scenes(n, seed, split))
    scores = []
    model.eval()
    for i in range(0, n, batch):
        chunk = scenes[i:i + batch]
        captions = greedy_captions(model, processor, [Image.fromarray(s.image) for s in chunk], DEFAULT_PROMPT)
        scores += [score_caption(c, s) for c, s in zip(captions, chunk)]
    pointing = pointing_game(Qwen2VLAdapter(model, processor), scenes[:16])["pointing"]
    model.train()
    return summarise(scores) | {"pointing": pointing, "example": captions[0], "truth": chunk[0].caption}


def optimiser(model: Qwen2VLForConditionalGeneration, lr: float, text_steps: int, total: int,
              language_lr: float = 1.0) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over two groups, the language model's (tied embedding included) and the rest, with a
    warm-up and cosine schedule; after the `text_steps` text-only steps the language group runs at
    `language_lr` times the rate of the rest."""
    language = [*model.model.language_model.parameters()]
    owned = {id(param) for param in language}
    groups = [{"params": [p for p in model.parameters() if id(p) not in owned]}, {"params": language}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    warmup = max(1, min(200, total // 10))
    schedule = lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / total)))  # noqa: E731
    language_schedule = lambda s: schedule(s) * (1.0 if s < text_steps else language_lr)  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, [schedule, language_schedule])


def train(out: Path, steps: int = 2700, lr: float = 1e-3, seed: int = 0, eval_every: int = 300,
          init: Path | None = None, first_stage: int = 0, text_steps: int = 400, frozen_language: float = 0.2,
          language_lr: float = 1.0, threads: int = 2, log=print) -> Path:
    """Train from scratch, or continue from the checkpoint `init`.

    A from-scratch run first trains the language model alone for `text_steps` (text-only tasks), then
    trains on images for `steps`, the language model frozen for the first `frozen_language` fraction
    of them, then at `language_lr` times the vision tower's learning rate (below 1: the language model
    moves less, so the vision tokens stay where the frozen stage put them).  `first_stage` skips the
    curriculum's earlier stages (a continuation of a run that finished them): the run's steps are
    spread over the remaining stages in the same proportions.
    """
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    if init is None:
        processor = build_processor(build_tokenizer(tokenizer_corpus()))
        model = Qwen2VLForConditionalGeneration(build_config(processor.tokenizer))
    else:
        processor = AutoProcessor.from_pretrained(init)
        model = Qwen2VLForConditionalGeneration.from_pretrained(init, dtype=torch.float32)
    model.train()
    language = [*model.model.language_model.parameters()]  # includes the tied embedding / LM head
    text_steps = text_steps if init is None else 0
    opt, sched = optimiser(model, lr, text_steps, text_steps + steps, language_lr)
    out.mkdir(parents=True, exist_ok=True)
    history, started, smooth = [], time.time(), None
    skipped = STAGES[first_stage - 1][0] if first_stage else 0.0
    for step in range(-text_steps, steps):
        if step < 0:  # the language model alone, on text
            inputs, labels = _batch(rng, processor, 64, 5, (0.03, 0.4), (56, 84), 0.0, text_share=1.0)
        else:
            progress = skipped + (1 - skipped) * step / steps
            for param in language:
                param.requires_grad_(init is not None or progress >= frozen_language)
            _, max_objects, areas, sizes, batch_size, shapes_share = next(s for s in STAGES if progress < s[0])
            inputs, labels = _batch(rng, processor, batch_size, max_objects, areas, sizes, shapes_share)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**inputs, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if step % 50 == 0:
            log(f"step {step} loss {smooth:.3f} lr {sched.get_last_lr()[0]:.2e} {time.time() - started:.0f}s")
        if step >= 0 and ((step + 1) % eval_every == 0 or step + 1 == steps):
            quality = evaluate_quality(model, processor, 48, seed=seed)
            history.append({"step": step + 1, "loss": smooth, "seconds": time.time() - started, **quality})
            log(json.dumps(history[-1]))
            model.save_pretrained(out)
            processor.save_pretrained(out)
            (out / "training_log.json").write_text(json.dumps(history, indent=1))
    return out


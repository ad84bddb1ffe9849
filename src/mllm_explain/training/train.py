"""Train the bundled model: a small Qwen2-VL on synthetic scenes, plain next-token loss on the answer.

No auxiliary loss touches localisation or the vision tokens: whatever the explanation methods find
in this model was learnt only from answering.  A run trains the language model on text first, then
the vision tower against the frozen language model, then both (docs/MODEL.md); inputs vary in
resolution (long side 56-336 px) so the model works at several scales, and the number of objects
grows over training (a curriculum).

Where it runs is not part of the recipe: `train` puts the model on a CPU or a CUDA device (bfloat16
autocast on either), makes the batches in-process or in DataLoader worker processes (`Plan` says what
each step trains on, so workers need no shared state), and writes resumable checkpoints atomically.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.captioning import chat_text, greedy_captions
from mllm_explain.data.synth import (
    CATEGORIES,
    COLOURS,
    DEFAULT_PROMPT,
    NUMBER_WORDS,
    PLURALS,
    iter_scenes,
    random_size,
    render_scene,
)
from mllm_explain.devices import resolve_device
from mllm_explain.errors import UserError
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
# Resized images, as every real photo at another resolution and every MSEA scale below 1 reaches a model: a share
# of the scenes is rendered larger, by 1 / f with f uniform in RESIZE_RANGE (MSEA's 0.5x .. 1x), and resampled
# down to the drawn size by one of the filters users' images go through.  A scene's caption is in fractions of
# the image, so it is the same at any size.
RESIZE_RANGE = (0.5, 1.0)
RESIZE_FILTERS = (Image.BICUBIC, Image.BILINEAR, Image.LANCZOS, Image.BOX)
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
    prompts = [*PROMPTS, SHAPES_PROMPT, REPEAT_PROMPT, LIST_PROMPT]
    return captions + [" ".join(words)] * 20 + prompts * 20 + list(EXTRA_TEXT) * 20


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
           sizes: tuple[int, int], shapes_share: float, text_share: float = TEXT_SHARE, resized_share: float = 0.0):
    images, texts = [], []
    for _ in range(batch_size):
        low, high = sizes
        long_side = int(rng.integers(low, high + 1))
        width, height = random_size(rng, int(long_side / 1.6), long_side)
        factor = rng.uniform(*RESIZE_RANGE) if resized_share and rng.random() < resized_share else 1.0
        rendered = (round(width / factor), round(height / factor))
        scene = render_scene(rng, size=rendered, max_objects=max_objects, area_range=areas)
        if rng.random() < text_share:
            texts.append(_text_item(rng, processor, scene))
            continue
        image = Image.fromarray(scene.image)
        images.append(image if factor == 1.0 else image.resize((width, height), RESIZE_FILTERS[rng.integers(4)]))
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


# The text-only phase's batches (`_batch`'s arguments after the processor): 64 text items.
TEXT_BATCH = (64, 5, (0.03, 0.4), (56, 84), 0.0, 1.0)
CHECKPOINTS = "checkpoints"  # inside --out: the latest resumable checkpoint, removed when the run ends


@dataclass(frozen=True)
class Plan:
    """What each optimiser step trains on, as a function of the step's index `done` alone (0 = the first
    text-only step, `text_steps` = the first image step).  The training loop, the data workers and a
    resumed run all read the plan, so they agree without sharing any state."""

    steps: int
    text_steps: int = 400
    first_stage: int = 0
    frozen_language: float = 0.2
    continued: bool = False  # from a checkpoint (--init): no frozen-language stage
    batch_mult: float = 1.0  # scales the curriculum's image batches; the text-only batch stays 64
    resized_share: float = 0.0  # share of image items rendered larger and resampled down (RESIZE_RANGE)

    @property
    def total(self) -> int:
        return self.text_steps + self.steps

    def progress(self, done: int) -> float | None:
        """The curriculum position in [0, 1) of this step; None for a text-only step.  `first_stage`
        spreads the image steps over the remaining stages in the curriculum's proportions."""
        step = done - self.text_steps
        if step < 0:
            return None
        skipped = STAGES[self.first_stage - 1][0] if self.first_stage else 0.0
        return skipped + (1 - skipped) * step / self.steps

    def stage(self, done: int) -> int | None:
        progress = self.progress(done)
        return None if progress is None else next(i for i, s in enumerate(STAGES) if progress < s[0])

    def batch(self, done: int) -> tuple:
        """`_batch`'s arguments after the processor: batch size, most objects, object areas, image
        sizes, share of shapes questions, share of text-only items, share of resized images."""
        stage = self.stage(done)
        if stage is None:
            return TEXT_BATCH
        _, max_objects, areas, sizes, batch_size, shapes_share = STAGES[stage]
        return (max(1, round(batch_size * self.batch_mult)), max_objects, areas, sizes, shapes_share, TEXT_SHARE,
                self.resized_share)

    def language_trains(self, done: int) -> bool:
        progress = self.progress(done)
        return progress is None or self.continued or progress >= self.frozen_language


class BatchStream(IterableDataset):
    """The plan's batches for steps `start`.. made in DataLoader worker processes.  Worker w of n makes
    steps start+w, start+w+n, ... (the loader hands batches out in that round-robin order), each with
    its own generator seeded by (seed, step): no two workers share a random stream, and the data depend
    neither on the number of workers nor on where a run was resumed."""

    def __init__(self, processor, plan: Plan, seed: int, start: int = 0) -> None:
        self.processor, self.plan, self.seed, self.start = processor, plan, seed, start

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for done in range(self.start + worker, self.plan.total, workers):
            inputs, labels = _batch(np.random.default_rng((self.seed, done)), self.processor, *self.plan.batch(done))
            yield done, dict(inputs), labels


def _in_process(rng: np.random.Generator, processor, plan: Plan, start: int):
    """--workers 0: the batches made here, lazily, from the run's one generator (the original recipe's
    data stream; its state is checkpointed, so a resumed run continues it exactly)."""
    for done in range(start, plan.total):
        inputs, labels = _batch(rng, processor, *plan.batch(done))
        yield done, inputs, labels


def _check_options(steps: int, lr: float, seed: int, eval_every: int, first_stage: int, text_steps: int,
                   frozen_language: float, language_lr: float, workers: int, batch_mult: float,
                   checkpoint_every: int, eval_scenes: int, max_seconds: float | None,
                   resized_share: float = 0.0) -> None:
    rules = [
        (steps >= 1, f"--steps must be at least 1, got {steps}"),
        (lr > 0, f"--lr must be positive, got {lr}"),
        (seed >= 0, f"--seed must be 0 or more, got {seed}"),
        (eval_every >= 1, f"--eval-every must be at least 1, got {eval_every}"),
        (0 <= first_stage < len(STAGES),
         f"--first-stage must be 0-{len(STAGES) - 1} (the curriculum has {len(STAGES)} stages), got {first_stage}"),
        (text_steps >= 0, f"--text-steps must be 0 or more, got {text_steps}"),
        (0 <= frozen_language <= 1, f"--frozen-language must be a fraction in [0, 1], got {frozen_language}"),
        (language_lr >= 0, f"--language-lr must be 0 or more, got {language_lr}"),
        (workers >= 0, f"--workers must be 0 (data made in-process) or more, got {workers}"),
        (batch_mult > 0, f"--batch-mult must be positive, got {batch_mult}"),
        (0 <= resized_share <= 1, f"--resized-share must be a fraction in [0, 1], got {resized_share}"),
        (checkpoint_every >= 0, f"--checkpoint-every must be 0 (never) or more, got {checkpoint_every}"),
        (eval_scenes >= 0, f"--eval-scenes must be 0 or more, got {eval_scenes}"),
        (max_seconds is None or max_seconds > 0, f"--max-seconds must be positive, got {max_seconds}"),
    ]
    for ok, message in rules:
        if not ok:
            raise UserError(message)


def _check_init(path: Path) -> None:
    """--init must be a Qwen2-VL checkpoint folder with its weights and processor."""
    config = path / "config.json"
    if not config.is_file():
        raise UserError(f"--init {path} is not a checkpoint folder (no config.json)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"--init {path}: unreadable config.json ({exc})") from None
    if model_type != "qwen2_vl":
        raise UserError(f"--init {path} holds a {model_type!r} model; training continues Qwen2-VL checkpoints only")
    if not any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json",
                                                    "pytorch_model.bin")):
        raise UserError(f"--init {path} has no weights (model.safetensors)")
    if not (path / "tokenizer_config.json").is_file():
        raise UserError(f"--init {path} has no processor (tokenizer_config.json); save it with the model")


def _load(path: Path, what: str):
    try:
        processor = AutoProcessor.from_pretrained(path)
        model = Qwen2VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"{what} {path}: cannot load it as a Qwen2-VL checkpoint ({exc})") from None
    return processor, model


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint under out/checkpoints (half-written ones are hidden temp folders)."""
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = [f for f in folder.glob("step-*") if (f / "state.json").is_file() and f.name[5:].isdigit()]
    return max(found, key=lambda f: int(f.name[5:]), default=None)


def save_checkpoint(out: Path, model, processor, opt, sched, state: dict) -> Path:
    """Write the resumable state atomically: into a temp folder, renamed into place only when complete,
    then drop the older checkpoints.  A kill at any moment leaves the previous checkpoint usable."""
    folder = out / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{state['done']:07d}"
    if final.exists():  # this very state was saved already (a run stopped right after resuming)
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=folder))
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    cuda = next(model.parameters()).device.type == "cuda"
    torch.save({"optimiser": opt.state_dict(), "schedule": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if cuda else []}, tmp / "optimiser.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    os.replace(tmp, final)
    for old in folder.iterdir():
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def train(out: Path, steps: int = 2700, lr: float = 1e-3, seed: int = 0, eval_every: int = 300,
          init: Path | None = None, first_stage: int = 0, text_steps: int = 400, frozen_language: float = 0.2,
          language_lr: float = 1.0, threads: int = 2, device: str | None = None, workers: int = 0,
          batch_mult: float = 1.0, resized_share: float = 0.0, checkpoint_every: int = 100, eval_scenes: int = 48,
          max_seconds: float | None = None, log=print, progress=None) -> Path:
    """Train from scratch, or continue from the checkpoint `init`; resume a killed run from its last
    checkpoint in `out`.  Returns `out`.

    A from-scratch run first trains the language model alone for `text_steps` (text-only tasks), then
    trains on images for `steps`, the language model frozen for the first `frozen_language` fraction
    of them, then at `language_lr` times the vision tower's learning rate (below 1: the language model
    moves less, so the vision tokens stay where the frozen stage put them).  `first_stage` skips the
    curriculum's earlier stages (a continuation of a run that finished them): the run's steps are
    spread over the remaining stages in the same proportions.

    Where it runs changes nothing in the recipe: `device` (None: CUDA when present), `workers` (data
    made by that many worker processes; 0: in-process, the original data stream), bfloat16 autocast on
    either device.  `batch_mult` scales the image batches; `resized_share` of the image items are rendered
    larger and resampled down (RESIZE_RANGE; 0: every image at its rendered size, as the runs before it).
    Every `checkpoint_every` steps the model,
    optimiser, schedule, step and random state go to out/checkpoints; rerunning the same call continues
    from there (removed when the run ends).  `max_seconds` stops this call early, checkpointed.
    Every `eval_every` image steps `eval_scenes` validation scenes are scored (0: not scored) and the
    model is saved to `out` with training_log.json.  `progress(done, total)` is called after each step.
    """
    out = Path(out)
    _check_options(steps, lr, seed, eval_every, first_stage, text_steps, frozen_language, language_lr, workers,
                   batch_mult, checkpoint_every, eval_scenes, max_seconds, resized_share)
    dev = resolve_device(device)
    if init is not None:
        init = Path(init)
        _check_init(init)
    text_steps = text_steps if init is None else 0
    plan = Plan(steps, text_steps, first_stage, frozen_language, init is not None, batch_mult, resized_share)
    recipe = {"steps": steps, "lr": lr, "seed": seed, "text_steps": text_steps, "first_stage": first_stage,
              "frozen_language": frozen_language, "language_lr": language_lr, "batch_mult": batch_mult,
              "resized_share": resized_share,
              "init": None if init is None else str(init.resolve())}
    resume = latest_checkpoint(out)
    state = None
    if resume is not None:
        state = json.loads((resume / "state.json").read_text())
        state["recipe"].setdefault("resized_share", 0.0)  # checkpoints from before the option resized nothing
        differ = [f"--{k.replace('_', '-')} {state['recipe'].get(k)} there, {v} here" for k, v in recipe.items()
                  if state["recipe"].get(k) != v]
        if differ:
            raise UserError(f"--out {out} holds a checkpoint of another run ({'; '.join(differ)}); rerun with "
                            "the same options to continue it, or choose another --out")

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    if resume is not None:
        processor, model = _load(resume, "checkpoint")
    elif init is not None:
        processor, model = _load(init, "--init")
    else:
        processor = build_processor(build_tokenizer(tokenizer_corpus()))
        model = Qwen2VLForConditionalGeneration(build_config(processor.tokenizer))
    model.to(dev)
    model.train()
    language = [*model.model.language_model.parameters()]  # includes the tied embedding / LM head
    opt, sched = optimiser(model, lr, plan.text_steps, plan.total, language_lr)
    start, history, smooth, seconds = 0, [], None, 0.0
    if state is not None:
        saved = torch.load(resume / "optimiser.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(saved["optimiser"])
        sched.load_state_dict(saved["schedule"])
        torch.set_rng_state(saved["torch_rng"])
        if dev.type == "cuda" and len(saved["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        rng.bit_generator.state = state["rng"]
        start, history, smooth, seconds = state["done"], state["history"], state["smooth"], state["seconds"]
    out.mkdir(parents=True, exist_ok=True)

    autocast = dev.type == "cpu" or torch.cuda.is_bf16_supported()
    firsts = {}  # curriculum stage -> its first step
    for done in range(text_steps, plan.total):
        firsts.setdefault(plan.stage(done), done)
    where = f"resuming from {resume} after {start} of {plan.total} steps" if resume else "training"
    makers = f"{workers} worker process{'es' if workers > 1 else ''}" if workers else "this process"
    log(f"{where} on {dev} ({'bfloat16 autocast' if autocast else 'float32: this GPU has no bfloat16'}), data "
        f"from {makers}: {text_steps} text-only steps, then {steps} image steps over curriculum stages "
        f"{min(firsts)}-{max(firsts)} with image batches {'/'.join(str(plan.batch(d)[0]) for d in firsts.values())}")

    if workers:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        loader = DataLoader(BatchStream(processor, plan, seed, start), batch_size=None, num_workers=workers,
                            pin_memory=dev.type == "cuda")
        batches = iter(loader)
    else:
        batches = _in_process(rng, processor, plan, start)
    began = time.time()  # this call's clock (--max-seconds); `started` is the run's, across resumes
    started, mark = began - seconds, (began, start)
    try:
        for done in range(start, plan.total):
            got, inputs, labels = next(batches)
            assert got == done, (got, done)
            step = done - text_steps  # negative in the text-only phase
            trains = plan.language_trains(done)
            for param in language:
                param.requires_grad_(trains)
            inputs = {key: value.to(dev, non_blocking=True) for key, value in inputs.items()}
            labels = labels.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                loss = model(**inputs, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            # kept on the device: no synchronisation per step on a GPU
            smooth = loss.detach() if smooth is None else 0.95 * smooth + 0.05 * loss.detach()
            if step % 50 == 0:
                now = time.time()
                rate = (done + 1 - mark[1]) / max(now - mark[0], 1e-9)
                mark = (now, done + 1)
                log(f"step {step} loss {float(smooth):.3f} lr {sched.get_last_lr()[0]:.2e} {now - started:.0f}s "
                    f"{rate:.2f} steps/s")
            if step >= 0 and ((step + 1) % eval_every == 0 or step + 1 == steps):
                quality = evaluate_quality(model, processor, eval_scenes, seed=seed) if eval_scenes else {}
                history.append({"step": step + 1, "loss": float(smooth), "seconds": time.time() - started, **quality})
                log(json.dumps(history[-1]))
                model.save_pretrained(out)
                processor.save_pretrained(out)
                (out / "training_log.json").write_text(json.dumps(history, indent=1))
            if progress is not None:
                progress(done + 1, plan.total)
            if done + 1 == plan.total:
                break
            stop = max_seconds is not None and time.time() - began >= max_seconds
            if stop or (checkpoint_every and (done + 1) % checkpoint_every == 0):
                state = {"done": done + 1, "recipe": recipe, "rng": rng.bit_generator.state,
                         "smooth": float(smooth), "history": history, "seconds": time.time() - started}
                path = save_checkpoint(out, model, processor, opt, sched, state)
                log(f"checkpoint after {done + 1} of {plan.total} steps: {path}")
            if stop:
                elapsed = time.time() - began
                log(f"stopped after {elapsed:.0f}s (--max-seconds) with {done + 1} of {plan.total} steps done, "
                    f"{(done + 1 - start) / elapsed:.2f} steps/s; rerun the same command to continue")
                return out
    finally:
        del batches  # stops the data workers
    elapsed = time.time() - began
    trained = plan.total - start
    log(f"trained {trained} steps in {elapsed:.0f}s ({trained / max(elapsed, 1e-9):.2f} steps/s); "
        f"model in {out}")
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return out

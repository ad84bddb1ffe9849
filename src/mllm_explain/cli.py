"""The `mllm-explain` command line."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import ProgressColumn, track
from rich.text import Text

from mllm_explain import interrupts
from mllm_explain.errors import Interrupted, UserError
from mllm_explain.limits import MAX_VISION_TOKENS

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
data_app = typer.Typer(no_args_is_help=True, help="Synthetic grounded-scene data.")
app.add_typer(data_app, name="data")
err = Console(stderr=True)
QUIET = not err.is_terminal  # progress bars only on a terminal: in a log or a pipe they add stray lines

ModelOption = Annotated[Optional[str], typer.Option("--model",
                                                    help="Local path or hub id; the bundled model if omitted.")]
DeviceOption = Annotated[Optional[str], typer.Option(
    help="cpu, cuda, cuda:N, or auto (spread the model over all GPUs); CUDA when present if omitted.")]
DtypeOption = Annotated[Optional[str], typer.Option(
    help="The weights' precision: float32, bfloat16 or float16; bfloat16 on CUDA, float32 on the CPU if omitted. "
         "Maps are computed in float32 either way.")]
VisionTokensOption = Annotated[int, typer.Option(
    help="The most vision tokens any input scale but 1 may feed; a scale beyond it is skipped with a note.", min=1)]
MethodOptions = Annotated[Optional[list[str]], typer.Option(
    "--option", "-o", help="A method option [METHOD.]KEY=VALUE, repeatable, e.g. -o arc_k=20 -o msea.scales=1,1.5 "
                           "(see `mllm-explain methods`); without METHOD. it changes every method that has KEY.")]


@app.command()
def caption(
    image: Annotated[Path, typer.Argument(help="Image file to describe.")],
    prompt: Annotated[str, typer.Option(help="Prompt for the model.")] = "Describe this image.",
    model: ModelOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer in tokens.", min=1)] = 64,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Print the model's greedy answer for IMAGE."""
    from mllm_explain.adapters import load_model
    from mllm_explain.images import load_image

    placement = _placement(device, dtype)
    picture = load_image(image)
    adapter = load_model(model, **placement)
    ids = adapter.generate(picture, prompt, max_new_tokens=max_new_tokens)
    typer.echo(adapter.tokenizer.decode(ids, skip_special_tokens=True).strip())


@app.command("explain")
def explain_command(
    images: Annotated[Optional[list[Path]], typer.Argument(
        help="Image file to explain; several files make one prompt of several images, in order.")] = None,
    prompt: Annotated[str, typer.Option(help="Prompt for the model.")] = "Describe this image.",
    answer: Annotated[Optional[str], typer.Option(help="Explain this text (teacher-forced) instead of "
                                                       "generating.")] = None,
    model: ModelOption = None,
    method: Annotated[str, typer.Option(help="Explanation method (see `mllm-explain methods`).")] = "msea_arc",
    scales: Annotated[Optional[str], typer.Option(help="Comma-separated input scales, e.g. 1,2 or 1,0.75 (above 1 "
                                                       "the input is enlarged).")] = None,
    option: MethodOptions = None,
    out: Annotated[Path, typer.Option(help="Folder for report.html, maps.npz, tokens.json and word PNGs.")] = Path(
        "report"),
    max_new_tokens: Annotated[int, typer.Option(help="Longest generated answer in tokens.", min=1)] = 64,
    max_vision_tokens: VisionTokensOption = MAX_VISION_TOKENS,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    video: Annotated[Optional[Path], typer.Option(help="Explain this video file instead of images (the `video` "
                                                       "extra): a map per group of frames the model merges.")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Frames per second to sample from --video (default: the "
                                                      "model's video processor's rate).", min=0.001)] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frames to sample from --video, evenly (instead of --fps).",
                                                  min=1)] = None,
) -> None:
    """Explain every word of the model's answer: which image regions (of each image, or of each group of a video's
    frames) and earlier words support it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mllm_explain.adapters import load_model
    from mllm_explain.images import load_image
    from mllm_explain.methods import get_method
    from mllm_explain.outputs import locked_folder
    from mllm_explain.pipeline import explain
    from mllm_explain.report import save

    options = _method_options([method], scales, option)
    get_method(method, **options)  # fail on a bad method or option before loading anything
    placement = _placement(device, dtype)
    if bool(images) == (video is not None):
        raise UserError("give image files or --video, not both" if images else "give an image file or --video")
    if video is None and (fps is not None or frames is not None):
        raise UserError("--fps and --frames sample a --video")
    pictures = [load_image(image) for image in images or []]
    with locked_folder(out), Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=err, transient=True, disable=QUIET) as progress:
        task = progress.add_task("loading model", total=None)
        adapter = load_model(model, **placement, max_vision_tokens=max_vision_tokens)
        result = explain(adapter, pictures or None, prompt, answer=answer, method=method, video=video, fps=fps,
                         frames=frames, max_new_tokens=max_new_tokens,
                         progress=lambda label: progress.update(task, description=label),
                         notice=lambda line: err.print(f"note: {line}", highlight=False, soft_wrap=True), **options)
        progress.update(task, description="writing report")
        report = save(result, out)
    typer.echo(result.answer)
    if len(result.images) > 1:
        _echo_image_shares(result)
    if result.ungrounded_words:
        from mllm_explain.grounding import THRESHOLD

        scores = result.word_grounding
        listed = ", ".join(f"{result.words[w]} ({scores[w]:.2f})" for w in result.ungrounded_words)
        typer.echo(f"maybe not in the image (grounding below {THRESHOLD}): {listed}")
    err.print(f"report: {report}", highlight=False)


def _echo_image_shares(result) -> None:
    """One line per noun of several images' answer: which image its map draws on (its share of map mass)."""
    from mllm_explain.evaluation.words import classify_words

    shares = result.image_shares
    for w, (word, kind) in enumerate(zip(result.words, classify_words(result.words, {}))):
        if not kind.is_noun:
            continue
        tokens = [t for t, index in enumerate(result.word_index) if index == w]
        mean = shares[tokens].mean(0)
        names = [f"frames {'-'.join(str(f + 1) for f in sorted(set(result.frames_of(k)['frames'])))}"
                 if result.frames_of(k) else f"image {k + 1}" for k in range(len(result.images))]
        typer.echo(f"{word}: " + ", ".join(f"{name} {100 * share:.0f}%" for name, share in zip(names, mean)))


@app.command("app")
def app_command(
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 127.0.0.1 (this machine only) unless you say "
                                           "otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 7860,
    max_new_tokens: Annotated[int, typer.Option(help="Longest generated answer in tokens.", min=1)] = 64,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """A local web app: upload an image, type a prompt, see several methods' maps side by side (the `app` extra)."""
    missing = _missing_app_extra()
    if missing:
        raise UserError(f"the app needs {', '.join(missing)}: pip install 'mllm-explain[app]'")
    from mllm_explain.adapters import load_model
    from mllm_explain.app import listen, serve

    placement = _placement(device, dtype)
    with listen(host, port) as sock:
        err.print("loading model", highlight=False)
        serve(load_model(model, **placement), sock, max_new_tokens=max_new_tokens)


def _missing_app_extra() -> list[str]:
    """The `app` extra's packages that cannot be imported (python-multipart is `python_multipart`, before 0.0.13
    `multipart`)."""
    from importlib import import_module

    missing = []
    for package, modules in (("starlette", ["starlette"]), ("uvicorn", ["uvicorn"]),
                             ("python-multipart", ["python_multipart", "multipart"])):
        for module in modules:
            try:
                import_module(module)
                break
            except ImportError:
                continue
        else:
            missing.append(package)
    return missing


@app.command("methods")
def methods_command() -> None:
    """List the explanation methods and their default options."""
    from mllm_explain.methods import get_method, list_methods

    for name in list_methods():
        typer.echo(f"{name}: {get_method(name).options()}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Output folder (image/, seg_label/, anno.json).")],
    n: Annotated[int, typer.Option(help="Number of scenes.", min=1)] = 500,
    seed: Annotated[int, typer.Option(help="Base seed; with the split it fixes every scene.")] = 0,
    split: Annotated[str, typer.Option(help="train, val or test: disjoint random streams.")] = "test",
) -> None:
    """Write N synthetic scenes with captions and per-pixel category masks (TAM GranDf layout)."""
    from rich.progress import Progress

    from mllm_explain.data.synth import write_dataset

    _data_folder(out, split)
    with Progress(console=err, disable=QUIET) as progress:
        task = progress.add_task(f"{split} scenes", total=n)
        anno = write_dataset(out, n, seed, split, progress=lambda k: progress.advance(task, k))
    typer.echo(f"wrote {n} scenes to {anno}")


@data_app.command("clips")
def data_clips(
    out: Annotated[Path, typer.Option(help="Output folder (MP4 clips and clips.json).")],
    n: Annotated[int, typer.Option(help="Number of clips.", min=1)] = 20,
    frames: Annotated[int, typer.Option(help="Frames per clip; one object enters at the middle frame.", min=2)] = 8,
    fps: Annotated[float, typer.Option(help="Frames per second of the clips.", min=0.1)] = 2.0,
    seed: Annotated[int, typer.Option(help="Base seed; with the split it fixes every clip.")] = 0,
    split: Annotated[str, typer.Option(help="train, val or test: disjoint random streams.")] = "test",
) -> None:
    """Write N synthetic clips in which one object is present from the middle frame on only (the `video` extra)."""
    from mllm_explain.data.synth import write_clips

    _data_folder(out, split)
    typer.echo(f"wrote {n} clips to {write_clips(out, n, seed, split, frames, fps)}")


def _data_folder(out: Path, split: str) -> None:
    """Refuse an unknown split, and an output folder that cannot be written, before any work."""
    from mllm_explain.data.synth import SPLITS
    from mllm_explain.outputs import prepare_folder

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    prepare_folder(out)


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write; rerun with the same --out to resume.")],
    steps: Annotated[int, typer.Option(help="Image steps (after the text-only steps).")] = 2700,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed for weights and data.")] = 0,
    eval_every: Annotated[int, typer.Option(help="Image steps between val-quality checks; each saves the model to "
                                                 "--out.")] = 300,
    init: Annotated[Optional[Path], typer.Option(help="Continue from this checkpoint instead of from scratch "
                                                      "(no text-only or frozen steps).")] = None,
    first_stage: Annotated[int, typer.Option(help="Curriculum stage to start at (0-3); for continuations.")] = 0,
    text_steps: Annotated[int, typer.Option(help="Text-only language steps before images (from scratch only).")] = 400,
    frozen_language: Annotated[float, typer.Option(help="Fraction of image steps with the language model "
                                                        "frozen.")] = 0.2,
    language_lr: Annotated[float, typer.Option(help="Language model's learning rate after the text-only steps, "
                                                    "as a multiple of --lr.")] = 1.0,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N; CUDA when present if omitted.")] = None,
    workers: Annotated[int, typer.Option(help="Processes making the data (0: in-process, the original data "
                                              "stream).")] = 0,
    batch_mult: Annotated[float, typer.Option(help="Multiplies the curriculum's image batches (64/32/16/16), "
                                                   "e.g. 4 on a GPU.")] = 1.0,
    resized_share: Annotated[float, typer.Option(help="Share of the image items rendered up to 2x larger and "
                                                      "resampled down to their size (as MSEA's scales and "
                                                      "users' photos are), e.g. 0.5; 0: none.")] = 0.0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps (text-only ones included) between resumable "
                                                       "checkpoints in --out/checkpoints (0: none).")] = 100,
    eval_scenes: Annotated[int, typer.Option(help="Validation scenes scored at each check (0: skip scoring).")] = 48,
    max_seconds: Annotated[Optional[float], typer.Option(help="Stop this call after this long, checkpointed; "
                                                              "rerun to continue.")] = None,
) -> None:
    """Train the bundled Qwen2-VL model on synthetic scenes (next-token loss on answers), from scratch or
    from --init; a killed run continues from its last checkpoint when rerun with the same options."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mllm_explain.outputs import locked_folder
    from mllm_explain.training.train import train as run

    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), _StepsPerSecond(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), console=err, disable=QUIET)
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:  # shown once training runs: bad options fail first, with no bar
            bar.start()
            task = bar.add_task("training", total=total, completed=done - 1)
        bar.update(task, completed=done)

    try:
        with locked_folder(out):
            run(out, steps=steps, lr=lr, seed=seed, eval_every=eval_every, init=init, first_stage=first_stage,
                text_steps=text_steps, frozen_language=frozen_language, language_lr=language_lr, device=device,
                workers=workers, batch_mult=batch_mult, resized_share=resized_share,
                checkpoint_every=checkpoint_every, eval_scenes=eval_scenes,
                max_seconds=max_seconds, log=lambda line: err.print(line, highlight=False, soft_wrap=True),
                progress=progress)
    finally:
        if task is not None:
            bar.stop()


class _StepsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} steps/s" if speed else "")


@app.command()
def quality(
    model: ModelOption = None,
    n: Annotated[int, typer.Option(help="Held-out scenes.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Scene seed.")] = 0,
    split: Annotated[str, typer.Option(help="Split to score on.")] = "test",
    scales: Annotated[str, typer.Option(help="Comma-separated input scales.")] = "1.0,0.75,0.5",
    out: Annotated[Optional[Path], typer.Option(help="Write the numbers as JSON here.")] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Caption quality on synthetic scenes: object recall, hallucination, colour accuracy per scale."""
    from PIL import Image

    from mllm_explain.adapters import load_model
    from mllm_explain.data.synth import DEFAULT_PROMPT, iter_scenes
    from mllm_explain.evaluation.caption_quality import score_caption, summarise
    from mllm_explain.outputs import prepare_folder, write_text

    scale_values = _parse_scales(scales)
    if max(scale_values) > 1:  # generation sees the processor's own size: an enlarged image would be shrunk back
        raise UserError(f"quality scores the captions `generate` writes, which sees scales <= 1 only; got {scales}")
    placement = _placement(device, dtype)
    if out:  # a file: refuse a folder or an unwritable place before the run, not after it
        prepare_folder(out.parent)
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; name a file for the JSON")
    adapter = load_model(model, **placement)
    scenes = list(iter_scenes(n, seed, split))
    results = {}
    for scale in scale_values:
        scores = []
        for scene in track(scenes, description=f"scale {scale}", console=err, disable=QUIET):
            image, _ = adapter.scaled_image(Image.fromarray(scene.image), scale)
            ids = adapter.generate(image, DEFAULT_PROMPT)
            scores.append(score_caption(adapter.tokenizer.decode(ids, skip_special_tokens=True), scene))
        results[str(scale)] = summarise(scores)
    report = {"model": adapter.name_or_path, "split": split, "seed": seed, "scales": results}
    typer.echo(json.dumps(report, indent=1))
    if out:
        write_text(out, json.dumps(report, indent=1))


@app.command()
def pointing(
    model: ModelOption = None,
    n: Annotated[int, typer.Option(help="Scenes.", min=1)] = 100,
    seed: Annotated[int, typer.Option(help="Scene seed.")] = 0,
    split: Annotated[str, typer.Option(help="Split to score on.")] = "val",
    method: Annotated[str, typer.Option(help="Explanation method.")] = "logit_lens",
    input_scale: Annotated[float, typer.Option(help="Resize every scene by this factor first (bicubic), e.g. 0.5: "
                                                    "the model's maps of a downscaled image.")] = 1.0,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Pointing game: how often an object noun's map peaks inside its object (reference captions)."""
    from mllm_explain.adapters import load_model
    from mllm_explain.data.synth import iter_scenes
    from mllm_explain.evaluation.pointing import pointing_game

    if not 0 < input_scale <= 4:
        raise UserError(f"--input-scale must be in (0, 4], got {input_scale}")
    adapter = load_model(model, **_placement(device, dtype))
    scenes = track(list(iter_scenes(n, seed, split)), description="scenes", console=err, disable=QUIET)
    typer.echo(json.dumps(pointing_game(adapter, scenes, method=method, input_scale=input_scale)
                          | {"n_scenes": n, "split": split}, indent=1))


@app.command("evaluate")
def evaluate_command(
    data: Annotated[Path, typer.Option(help="Dataset folder: anno.json layout, or COCO14's image/, seg_label/, "
                                            "annotations/.")],
    fmt: Annotated[str, typer.Option("--format", help="synthetic, coco14, grandf or openpsg.")] = "synthetic",
    methods: Annotated[str, typer.Option(help="Comma-separated methods to compare ('none' with --hallucination: "
                                              "only the detection).")] = "msea_arc,tam,logit_lens",
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N samples.", min=1)] = None,
    answer: Annotated[str, typer.Option(help="generate: explain the model's caption; reference: teacher-force "
                                             "the dataset's.")] = "generate",
    model: ModelOption = None,
    out: Annotated[Path, typer.Option(help="Folder for samples.jsonl, summary.json/.csv, by_word_class.json and "
                                           "plots.")] = Path("evaluation"),
    faithfulness: Annotated[Optional[bool], typer.Option(help="Also run deletion/insertion curves (slower; the "
                                                              "default under our protocol, not TAM's).")] = None,
    steps: Annotated[int, typer.Option(help="Perturbation steps per faithfulness curve.", min=1)] = 8,
    scales: Annotated[Optional[str], typer.Option(help="Comma-separated input scales for every method, e.g. "
                                                       "1,2 (to change one method's: -o METHOD.scales=...).")] = None,
    option: MethodOptions = None,
    prompt: Annotated[Optional[str], typer.Option(help="Prompt instead of the format's default (TAM's).")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="Longest generated caption in tokens (default 64; "
                                                               "256 under --protocol tam, as TAM's).", min=1)] = None,
    protocol: Annotated[str, typer.Option(help="ours: our scoring (docs/METHODS.md); tam: TAM's eval.py to the letter "
                                               "(NLTK word classes, its end token and map path), for numbers to set "
                                               "beside published ones (needs the tam extra and NLTK's data).")]
    = "ours",
    nltk_data: Annotated[Optional[Path], typer.Option(help="Folder holding NLTK's tagger (taggers/) and WordNet "
                                                           "(corpora/wordnet) for --protocol tam, if not on NLTK's "
                                                           "own path.")] = None,
    cost: Annotated[str, typer.Option(help="shared: each sample's forwards run once for every method that reads "
                                           "them (and a generated caption's states are reused); separate: each "
                                           "method runs its own, as `explain` alone would. Scores are the same; "
                                           "seconds differ (see summary.json's cost).")] = "shared",
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the results already in --out and start afresh "
                                                         "instead of resuming.")] = False,
    hallucination: Annotated[bool, typer.Option("--hallucination", help="Also label every object noun of the "
                                                "captions as in the image or not and rate the grounding score and "
                                                "baselines as hallucination detectors (AUROC, AP).")] = False,
    input_scale: Annotated[float, typer.Option(help="Resize every image (and mask) by this factor first, e.g. 0.5 "
                                                    "for a harder, more hallucinated setting.")] = 1.0,
    max_vision_tokens: VisionTokensOption = MAX_VISION_TOKENS,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    workers: Annotated[int, typer.Option(help="Evaluate on this many Ray workers, each loading the model once: a "
                                              "GPU each where there are GPUs, else a CPU each (needs the "
                                              "distributed extra).", min=1)] = 1,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to run the workers on, e.g. "
                                                        "ray://head:10001; a local Ray if omitted.")] = None,
) -> None:
    """Score explanation methods on a dataset with masks: Obj-IoU, Func-IoU, F1-IoU, faithfulness, cost;
    with --hallucination, how well word grounding scores find the object nouns that are not in the image.

    Resumable: rerun with the same --out and settings to continue an interrupted run (--limit and
    --methods may grow); other settings are refused unless --fresh."""
    from rich.progress import Progress

    from mllm_explain.adapters import load_model, model_source
    from mllm_explain.evaluation.datasets import load_samples
    from mllm_explain.evaluation.runner import Evaluation, EvaluationConfig, markdown_table, start_run
    from mllm_explain.methods import get_method, options_for
    from mllm_explain.outputs import locked_folder

    names = [m.strip() for m in methods.split(",") if m.strip() and m.strip() != "none"]
    options = _method_options(names, scales, option)
    ray_workers = None
    if workers > 1 or address:  # ray installed, the cluster reachable, the devices named right: before any work
        from mllm_explain.evaluation.distributed import RayWorkers

        ray_workers = RayWorkers(model, workers, address, device, dtype)
    placement = _placement(device, dtype) if ray_workers is None else {}  # Ray's workers place their own models
    for name in names:
        get_method(name, **options_for(name, options))  # fail on a bad method or option before loading anything
    config = EvaluationConfig(data=data, fmt=fmt, methods=names, out=out, limit=limit, answer=answer,
                              faithfulness=faithfulness, steps=steps, options=options, prompt=prompt,
                              max_new_tokens=max_new_tokens, input_scale=input_scale, hallucination=hallucination,
                              cost=cost, max_vision_tokens=max_vision_tokens, protocol=protocol, nltk_data=nltk_data)
    if protocol == "tam":  # NLTK and its data are there, before the model loads
        from mllm_explain.evaluation.tam_protocol import tam_language

        tam_language(nltk_data)
    with locked_folder(out):  # checked, locked and its settings compared before the model loads
        samples = load_samples(data, fmt, prompt, protocol, notice=lambda line: err.print(line, highlight=False))
        start_run(config, model_source(model), fresh)
        run = (Evaluation(load_model(model, **placement), config, samples) if ray_workers is None
               else ray_workers.evaluation(config, samples))
        try:
            with Progress(console=err, disable=QUIET) as progress:
                task = progress.add_task("evaluating", total=len(run.samples))
                advance = partial(progress.advance, task)
                summary = (run.run(advance) if ray_workers is None else
                           ray_workers.run(run, advance, log=lambda line: err.print(line, highlight=False)))
        except KeyboardInterrupt:
            raise Interrupted(f"{interrupts.reason()}: {run.completed()} of {len(run.samples)} samples are complete in "
                              f"{run.path}; rerun the same command to resume") from None
    typer.echo(markdown_table(summary))
    err.print(f"results: {out}", highlight=False)


@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes, one repeat: under two minutes on 2 CPU cores.")]
    = False,
    out: Annotated[Path, typer.Option(help="Folder for bench.json and bench.png.")] = Path("bench"),
    device: DeviceOption = None,
    dtype: DtypeOption = None,
) -> None:
    """Measure speed and memory as ratios on the same inputs: filter vs per-pixel loop, explanation vs
    generation per method, ours vs the naive TAM pipeline, and scaling with length, image and scales."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mllm_explain.bench import run_bench, tables

    placement = _placement(device, dtype)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True, disable=QUIET) as progress:
        task = progress.add_task("starting", total=None)
        report = run_bench(out, quick=quick, placement=placement,
                           progress=lambda label: progress.update(task, description=label))
    console = Console(width=max(Console().width, 160))  # wide tables stay readable when piped to a log
    for table in tables(report):
        console.print(table)
    err.print(f"results: {out / 'bench.json'}, {out / 'bench.png'}", highlight=False)


def _placement(device: str | None, dtype: str | None) -> dict:
    """`load_model`'s device, dtype and device_map for --device and --dtype, checked before any work."""
    from mllm_explain.devices import resolve_device, resolve_dtype

    if device == "auto":
        resolve_dtype(dtype, resolve_device(None))
        return {"dtype": dtype, "device_map": "auto"}
    return {"device": device, "dtype": resolve_dtype(dtype, resolve_device(device))}


def _method_options(names: list[str], scales: str | None, option: list[str] | None) -> dict:
    """--scales and every -o [METHOD.]KEY=VALUE as typed keyword options for the methods `names`; with several
    methods, one `note:` line per plain option naming the methods whose defaults it changes."""
    from mllm_explain.methods import changed_by_plain, option_text, parse_option

    options = dict(parse_option(text, names) for text in option or [])
    if scales is not None:
        options["scales"] = tuple(_parse_scales(scales))
    if len(names) > 1:
        for key, changed in changed_by_plain(options, names).items():
            if changed:
                err.print(f"note: {key}={option_text(options[key])} changes {', '.join(changed)}; to change one "
                          f"method, prefix it: -o {changed[-1]}.{key}=...", highlight=False, soft_wrap=True)
    return options



def _parse_scales(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"scales must be comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise UserError(f"scales must be positive numbers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input and usage errors become one line `error: ...` on stderr and exit code 2,
    Ctrl-C one line and exit code 130, SIGTERM one line and 143; never a traceback."""
    interrupts.install()
    try:
        if QUIET:  # nor transformers' loading bars in a log or a pipe
            from transformers.utils import logging

            logging.disable_progress_bar()
        code = app(args=argv, standalone_mode=False)
    except UserError as exc:
        _fail(str(exc), 2)
    except Interrupted as exc:
        interrupts.exit_stopped(str(exc))
    except KeyboardInterrupt:  # outside a command (typer turns one inside a command into exit code 130)
        interrupts.exit_stopped(interrupts.reason())
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command given: the help (rich prints it itself)
            if exc.format_message().strip():
                print(exc.format_message())
            sys.exit(2)
        _fail(exc.format_message(), 2)
    if code == 130:
        interrupts.exit_stopped(interrupts.reason())
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()

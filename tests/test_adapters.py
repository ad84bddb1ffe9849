"""The family adapters on tiny, randomly initialised models of the real transformers classes with their
real processor classes, all built here from config objects (nothing is downloaded): registration,
where a trace puts vision / prompt / answer tokens, teacher-forced states against `generate`, attention
rows, and how input scale changes the grid or (letterboxed encoders) the image box: an enlarged scale gives the
views the processor's rules predict, or a one-line refusal, within `max_vision_tokens`."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_models import (
    ANSWER,
    FAMILIES,
    N_NEW,
    PROMPT,
    TALL,
    WIDE,
    build_adapter,
    foreign_hooks,
    make_image,
    tile_views,
)

from mllm_explain import explain
from mllm_explain.adapters import ADAPTERS, ModelAdapter, load_model
from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.internvl import InternVLLetterboxAdapter
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.errors import UserError
from mllm_explain.views import FULL_BOX


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request) -> tuple[str, ModelAdapter]:
    return request.param, build_adapter(request.param)


def test_registry_maps_model_type_to_family_adapter(family):
    name, adapter = family
    assert adapter.full_model.config.model_type == name
    assert ADAPTERS[name] is FAMILIES[name].adapter_cls
    assert type(adapter) is FAMILIES[name].adapter_cls


@pytest.mark.parametrize("name", list(FAMILIES))
def test_load_model_from_saved_directory(name, tmp_path):
    """`save_pretrained` of the model and processor loads back (Auto classes, CPU, float32) as the same family."""
    adapter = build_adapter(name)
    adapter.full_model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, device="cpu", dtype=torch.float32)
    assert type(loaded) is FAMILIES[name].adapter_cls and type(loaded.model) is type(adapter.model)
    assert type(loaded.processor) is type(adapter.processor)
    assert type(loaded.processor.image_processor) is type(adapter.processor.image_processor)
    answer = adapter.tokenize_answer(ANSWER)
    expected, got = adapter.trace(make_image(WIDE), PROMPT, answer), loaded.trace(make_image(WIDE), PROMPT, answer)
    assert torch.equal(got.input_ids, expected.input_ids)
    assert torch.allclose(got.hidden, expected.hidden, atol=1e-5)


def test_trace_positions(family):
    name, adapter = family
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    assert [(v.kind, v.grid, v.image_box) for v in trace.views] == FAMILIES[name].views
    vision = trace.vision_positions
    assert len(set(vision.tolist())) == len(vision)  # no token in two views
    assert (trace.input_ids[vision] == adapter.image_token_id).all()
    assert adapter.tokenizer.decode(trace.input_ids[trace.prompt_positions]) == PROMPT
    length = len(trace.input_ids)
    assert torch.equal(trace.answer_positions, torch.arange(length - len(answer), length))
    assert trace.answer_ids.tolist() == answer
    assert trace.hidden.shape == (length, adapter.model.config.get_text_config().hidden_size)
    assert trace.hidden.dtype == torch.float32


def test_teacher_forced_states_match_generate(family):
    """`generate`'s last hidden state (final-norm output in all four families, as transformers ties it to
    `last_hidden_state`) at the position that predicted each new token equals the teacher-forced trace."""
    _, adapter = family
    image = make_image(WIDE)
    inputs = adapter.encode(adapter.scaled_image(image, 1.0)[0], PROMPT)  # the view `trace` feeds at scale 1
    out = adapter.model.generate(**inputs, max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False,
                                 output_hidden_states=True, output_logits=True, return_dict_in_generate=True,
                                 suppress_tokens=adapter.tokenizer.all_special_ids)
    answer = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    assert len(answer) == N_NEW
    greedy = adapter.generate(image, PROMPT, max_new_tokens=N_NEW)  # stops at the first special token
    assert greedy == answer[:len(greedy)]
    trace = adapter.trace(image, PROMPT, answer)
    if out.hidden_states[0][-1].dim() > 3:  # Gemma 3n's end with its last layer's AltUp streams: compare the logits
        logits = adapter.logits(trace.hidden[trace.answer_positions - 1])
        assert torch.allclose(logits, torch.cat(out.logits).float(), atol=1e-4)
        return
    generated = torch.stack([step[-1][0, -1] for step in out.hidden_states])
    assert torch.allclose(trace.hidden[trace.answer_positions - 1], generated, atol=1e-4)


def test_attention_rows_gradients_and_no_hooks_left(family):
    _, adapter = family
    answer = adapter.tokenize_answer(ANSWER)
    implementation = adapter.model.config._attn_implementation
    assert adapter.trace(make_image(WIDE), PROMPT, answer).inputs is None  # a lean trace: no pixels kept
    trace = adapter.trace(make_image(WIDE), PROMPT, answer, attention=True, gradients=True)
    assert trace.attention.shape == (len(answer), len(trace.input_ids))
    rows = trace.attention.sum(-1)
    if not any("sink" in name for name, _ in adapter.last_attention.named_parameters()):
        assert torch.allclose(rows, torch.ones(len(answer)), atol=1e-4)
    else:  # a learned attention sink (Hy4, Inkling 2) takes part of each row
        assert (rows < 1).all() and (rows > 0.5).all()
    assert (trace.attention >= 0).all()
    assert adapter.model.config._attn_implementation == implementation
    grads, states = adapter.last_layer_gradients(trace)
    text = adapter.model.config.get_text_config()  # Hy4's, Qwen4-Exp's hyper-connections, Gemma 3n's AltUp: streams
    streams = getattr(text, "hc_mult", None) or getattr(text, "hc_count", None) or getattr(text, "altup_num_inputs", 1)
    size = (len(trace.vision_positions), text.hidden_size * streams)
    assert grads.shape == (len(answer), *size) and states.shape == size
    assert torch.isfinite(grads).all() and (grads.abs().sum((1, 2)) > 0).all()
    assert foreign_hooks(adapter.model) == []


def letterboxed(name: str) -> ModelAdapter:
    """The family's adapter that letterboxes (InternVL's untiled option, `InternVLLetterboxAdapter`)."""
    adapter = build_adapter(name)
    return InternVLLetterboxAdapter(adapter.model, adapter.processor) if name == "internvl" else adapter


def test_scale_changes_grid_or_image_box(family):
    name, adapter = family
    if name == "internvl":
        adapter = letterboxed(name)  # the tiled layout at other scales: test_tiled_scale_retiles
    answer = adapter.tokenize_answer(ANSWER)
    image = make_image(WIDE)
    full, half = adapter.trace(image, PROMPT, answer), adapter.trace(image, PROMPT, answer, scale=0.5)
    if not FAMILIES[name].rescales:  # the processor resizes the image to its own size again: the detail changes
        assert [v.describe() for v in half.views] == [v.describe() for v in full.views]
        pixels = [adapter.encode(adapter.scaled_image(image, scale)[0], PROMPT)["pixel_values"] for scale in (1, 0.5)]
        assert pixels[0].shape == pixels[1].shape and not torch.equal(*pixels)
        return
    if len(full.views) > 1:  # tiles: a smaller image gets fewer tokens or as many (another tiling may result)
        assert 0 < len(half.vision_positions) <= len(full.vision_positions)
        return
    (full_view,), (half_view,) = full.views, half.views
    if isinstance(adapter, FixedResolutionAdapter):
        assert half_view.grid == full_view.grid
        assert full_view.grid_box == (0.125, 0.0, 0.875, 1.0)  # 168x126 letterboxed: 21 px bands above and below
        assert half_view.grid_box == (52 / 168, 0.25, 115 / 168, 0.75)  # 84x63 centred in 168x168
        if name == "internvl":  # its processor writes a fixed count of tokens per tile of a fixed size
            with pytest.raises(UserError, match="fixed resolution"):
                adapter.trace(image, PROMPT, answer, scale=2.0)
            assert adapter.max_scale(make_image((64, 64))) == 1.0  # not the tiled adapter's 3x3 tiles
        elif not enlarges(name):  # ViP-LLaVA, Video-LLaVA (vision tower), DeepSeek-VL, Janus (fixed token count)
            with pytest.raises(UserError, match=FAMILIES[name].enlarged[2.0]):
                adapter.trace(image, PROMPT, answer, scale=2.0)
        else:  # LLaVA: the same letterboxed square, fed at twice the encoder's side
            (double,) = adapter.trace(image, PROMPT, answer, scale=2.0).views
            assert double.grid == (12, 12) and double.grid_box == full_view.grid_box
    else:
        assert half_view.grid[0] < full_view.grid[0] and half_view.grid[1] < full_view.grid[1]
        padded = FAMILIES[name].padded
        if isinstance(padded, tuple):
            assert (full_view.grid_box, half_view.grid_box) == padded
        for view in (full_view, half_view):
            if padded:  # the image in the top-left part, less than one cell of padding each way
                top, left, bottom, right = view.grid_box
                (rows, columns) = view.grid
                assert top == left == 0 and (rows - 1) / rows < bottom <= 1 and (columns - 1) / columns < right <= 1
            else:
                assert view.grid_box == (0.0, 0.0, 1.0, 1.0)


def enlarges(name: str) -> bool:
    """Whether the family sees its `enlarge` image in more detail at scale 1.5."""
    return not isinstance(FAMILIES[name].enlarged[1.5], str)


@pytest.mark.parametrize("scale", [1.5, 2.0])
def test_an_enlarged_scale_gives_the_predicted_views_or_one_line(family, scale):
    """An enlarged scale gives the views the processor's rules predict (`Family.enlarged`), the answer's
    probabilities from the same input as the trace's, and leaves the processor's own settings as they were; where
    the model cannot see the image in more detail, `check_scale` and `trace` refuse it in one line."""
    name, adapter = family
    image, expected = make_image(FAMILIES[name].enlarge), FAMILIES[name].enlarged[scale]
    answer = adapter.tokenize_answer(ANSWER)
    if isinstance(expected, str):
        for refuse in (lambda: adapter.check_scale(image, scale), lambda: adapter.trace(image, PROMPT, answer, scale)):
            with pytest.raises(UserError, match=expected) as refused:
                refuse()
            assert "\n" not in str(refused.value)
        return
    settings = copy.deepcopy(vars(adapter.processor.image_processor))  # its size or patch budget among them
    adapter.check_scale(image, scale)
    trace = adapter.trace(image, PROMPT, answer, scale=scale)
    assert [(v.kind, v.grid) for v in trace.views] == [(kind, grid) for kind, grid, *_ in expected]
    assert (trace.input_ids[trace.vision_positions] == adapter.image_token_id).all()
    logits = adapter.logits(trace.hidden[trace.answer_positions - 1])
    expected_probabilities = logits.softmax(-1).gather(1, trace.answer_ids[:, None])[:, 0]
    probabilities = adapter.answer_probabilities([image], PROMPT, answer, scale=scale)[0]
    assert torch.allclose(probabilities, expected_probabilities, atol=1e-5)
    assert vars(adapter.processor.image_processor) == settings  # lifted for the call only


def test_max_vision_tokens_bounds_every_scale_but_1(family, monkeypatch):
    """`max_scale` is within the bound and taken; a bound of the scale-1 input's vision tokens refuses scale 1.5 in
    one line naming it, and no bound refuses scale 1, the processor's own input.  `max_scale` is the detail view
    of the processor as shipped: LLaVA's interpolated encoder and Idefics3's lifted edge enlarge, but past it."""
    name, adapter = family
    image = make_image(FAMILIES[name].enlarge)
    largest = adapter.max_scale(image)
    assert (largest > 1) == (enlarges(name) and name not in ("llava", "idefics3", "smolvlm", "git"))
    adapter.check_scale(image, largest)
    inputs = adapter.encode(adapter.scaled_image(image, 1.0)[0], PROMPT)
    vision_tokens = int((inputs["input_ids"] == adapter.image_token_id).sum()) + adapter.prefix_length(inputs)
    monkeypatch.setattr(adapter, "max_vision_tokens", vision_tokens)
    adapter.check_scale(image, adapter.max_scale(image))
    if enlarges(name):
        with pytest.raises(UserError, match=f"max_vision_tokens={adapter.max_vision_tokens}$") as refused:
            adapter.check_scale(image, 1.5)
        assert "\n" not in str(refused.value)
    monkeypatch.setattr(adapter, "max_vision_tokens", 1)
    adapter.check_scale(image, 1.0)


def test_msea_takes_an_enlarged_scale_or_skips_it_in_one_notice(family):
    """`explain` with MSEA at scales 1 and 1.5: finite maps from both where the family enlarges, else from scale 1
    with the skipped scale named in one notice."""
    name, adapter = family
    notes: list[str] = []
    result = explain(adapter, make_image(FAMILIES[name].enlarge), PROMPT, answer=ANSWER, method="msea",
                     scales=(1.0, 1.5), grounding=False, notice=notes.append)
    assert list(result.scales) == ([1.0, 1.5] if enlarges(name) else [1.0])
    assert len(notes) == (not enlarges(name)) and all("\n" not in note for note in notes)
    assert np.isfinite(result.grid_maps).all()


def test_llava_enlarged_scale_interpolates_position_embeddings():
    """LLaVA at scale 2: the letterboxed square fed at twice the encoder's side, CLIP's position embeddings
    interpolated (only then: `generate`, at scale 1, refuses the keyword), attention rows and gradients."""
    adapter = build_adapter("llava")
    image, answer = make_image(WIDE), adapter.tokenize_answer(ANSWER)
    assert "interpolate_pos_encoding" not in adapter.encode(adapter.scaled_image(image, 1.0)[0], PROMPT)
    trace = adapter.trace(image, PROMPT, answer, scale=2.0, attention=True, gradients=True)
    assert trace.inputs["pixel_values"].shape[-2:] == (96, 96) and trace.inputs["interpolate_pos_encoding"] is True
    assert trace.views[0].grid == (12, 12)
    assert torch.allclose(trace.attention.sum(-1), torch.ones(len(answer)), atol=1e-4)
    grads, _ = adapter.last_layer_gradients(trace)
    assert grads.shape[1] == 144 and torch.isfinite(grads).all() and (grads.abs().sum((1, 2)) > 0).all()
    assert len(adapter.generate(image, PROMPT, max_new_tokens=2)) <= 2
    assert adapter.max_scale(image) == 1.0  # an interpolated encoder is no view in more detail for the grounding score


@pytest.mark.parametrize("name", ["idefics3", "smolvlm"])
def test_an_enlarged_image_is_split_into_more_tiles_of_the_same_size(name, monkeypatch):
    """Above 1 the processor's long edge is lifted; its tiles keep `max_image_size`.  Beyond the 4096 px it shrinks
    any image to, or with image splitting off, the scale is refused in one line."""
    adapter = build_adapter(name)
    image, tile = make_image(WIDE), adapter.processor.image_processor.max_image_size["longest_edge"]
    inputs = adapter.encode(adapter.scaled_image(image, 2.0)[0], PROMPT, scale=2.0)
    assert inputs["pixel_values"].shape[1:] == (6 * 8 + 1, 3, tile, tile)
    with pytest.raises(UserError, match="beyond the 4096 px"):
        adapter.check_scale(image, 4097 / adapter.longest_edge)
    monkeypatch.setattr(adapter.processor.image_processor, "do_image_splitting", False)
    assert adapter.max_scale(image) == 1.0
    with pytest.raises(UserError, match="image splitting off"):
        adapter.check_scale(image, 1.5)


def test_llava_next_refuses_a_scale_beyond_its_largest_canvas():
    """WIDE already fills the largest pinpoint (2x2 tiles) at scale 1; 60x45 fills it at 1.6, taken within the
    tolerance, not beyond."""
    adapter = build_adapter("llava_next")
    with pytest.raises(UserError, match="already at scale 1"):
        adapter.check_scale(make_image(WIDE), 1.5)
    image = make_image((60, 45))
    assert adapter.max_scale(image) == 1.6
    adapter.check_scale(image, 1.6 * 1.005)
    with pytest.raises(UserError, match="at scale 1.6,"):
        adapter.check_scale(image, 1.6 * 1.02)


@pytest.mark.parametrize("name", [name for name, f in FAMILIES.items() if issubclass(f.adapter_cls, Qwen2VLAdapter)])
def test_native_resolution_input_size_is_the_processors(name):
    """The size the adapter scales from is the one the processor gives, also where its pixel range or smallest
    side resizes the image (GLM-4V's range counts an image twice, once per frame of its temporal patch)."""
    adapter = build_adapter(name)
    processor = adapter.processor.image_processor
    for size in [WIDE, TALL, (30, 400), (1000, 900), (60, 50)]:
        image = make_image(size)
        out = processor(images=[image], return_tensors="pt")
        if "image_sizes" in out:  # Apertus 1.5: the resized size itself
            fed = tuple(out["image_sizes"][0].tolist())
        else:  # patches; Nemotron Omni's grid has no frames (`image_grid_hw`)
            height, width = out["image_grid_thw"][0, 1:] if "image_grid_thw" in out else out["image_grid_hw"][0]
            fed = (int(height) * processor.patch_size, int(width) * processor.patch_size)
        assert adapter._pixel_range(image)[2] == fed


def test_tiled_scale_retiles():
    """The image is resized before the processor, which tiles the new size: the canvas follows the aspect
    ratio (WIDE keeps 4x3 tiles at every scale), its size only where ratios tie (256x128: 4x2, at half 2x1; a
    64 px square: one tile, 2x2 at 1.5 and 2, 3x3 from `max_scale` on, its area over half of 3x3 tiles)."""
    adapter = build_adapter("internvl")
    answer = adapter.tokenize_answer(ANSWER)
    for scale in (0.5, 2.0):
        wide = adapter.trace(make_image(WIDE), PROMPT, answer, scale=scale)
        assert [(v.kind, v.grid, v.image_box) for v in wide.views] == FAMILIES["internvl"].views
    assert adapter.max_scale(make_image(WIDE)) == 1.0
    square = make_image((64, 64))
    assert round(64 * adapter.max_scale(square)) == 136  # 136^2 > 64^2 * 9 / 2 > 135^2
    largest = adapter.trace(square, PROMPT, answer, scale=adapter.max_scale(square))
    assert [(v.kind, v.image_box) for v in largest.views] == [(k, b) for k, _, b in tile_views(3, 3, (4, 4))]
    image = make_image((256, 128))
    full, half = (adapter.trace(image, PROMPT, answer, scale=s) for s in (1.0, 0.5))
    assert [(v.kind, v.image_box) for v in full.views] == [(k, b) for k, _, b in tile_views(2, 4, (4, 4))]
    assert [(v.kind, v.image_box) for v in half.views] == [(k, b) for k, _, b in tile_views(1, 2, (4, 4))]
    single = adapter.trace(make_image((64, 64)), PROMPT, answer)
    assert [(v.kind, v.image_box, v.grid_box) for v in single.views] == [("image", FULL_BOX, FULL_BOX)]


@pytest.mark.parametrize("name", ["llava", "internvl"])
@pytest.mark.parametrize("size, box", [(WIDE, (0.125, 0.0, 0.875, 1.0)), (TALL, (0.0, 0.125, 1.0, 0.875))])
def test_letterbox_keeps_whole_image(name, size, box):
    """The canvas is square, padded with the mean colour, and survives the processor uncropped: the
    padding normalises to ~0 in exactly the bands outside `box`."""
    adapter = letterboxed(name)
    image = make_image(size)
    canvas, got = adapter.scaled_image(image, 1.0)
    assert got == box and canvas.size == (168, 168)
    top, left, bottom, right = (round(value * 168) for value in box)
    assert canvas.crop((left, top, right, bottom)).tobytes() == image.tobytes()
    assert canvas.getpixel((0, 0)) == canvas.getpixel((167, 167)) == adapter.background
    pixels = adapter.processor.image_processor(images=[canvas], return_tensors="pt")["pixel_values"][0]
    axis, (start, stop) = (1, (box[0], box[2])) if size == WIDE else (2, (box[1], box[3]))
    profile = pixels.abs().amax(dim=tuple(dim for dim in range(3) if dim != axis))  # per row / column
    side = len(profile)
    start, stop = round(start * side), round(stop * side)  # bicubic resizing blends two lines either side
    assert (profile[:start - 2] < 0.02).all() and (profile[stop + 2:] < 0.02).all()
    assert (profile[start + 2:stop - 2] > 0.5).all()
    if name == "internvl":  # the letterbox adapter's processor makes one tile, the tiled one's is untouched
        assert adapter.encode(canvas, PROMPT)["pixel_values"].shape[0] == 1
        assert build_adapter(name).processor.images_kwargs["crop_to_patches"] is True


def test_llama4_is_refused_in_one_line_while_transformers_cannot_run_it(tmp_path):
    """Llama 4 is refused by name; the day transformers' own forward of it runs, this test fails and says to add
    its adapter instead."""
    from transformers import Llama4Config, Llama4ForConditionalGeneration

    text = dict(vocab_size=64, hidden_size=64, intermediate_size=64, intermediate_size_mlp=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, num_local_experts=2, num_experts_per_tok=1,
                interleave_moe_layer_step=2, attention_chunk_size=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128, image_size=56,
                  patch_size=14, vision_output_dim=64, projector_input_dim=64, projector_output_dim=64,
                  pixel_shuffle_ratio=0.5)
    config = Llama4Config(text_config=text, vision_config=vision, image_token_index=5, boi_token_index=3,
                          eoi_token_index=4)
    model = Llama4ForConditionalGeneration(config).eval()
    ids = torch.tensor([[1, 3, 5, 5, 5, 5, 4, 10, 11]])  # one 56 px tile: 4x4 patches, pixel-shuffled to 2x2
    with pytest.raises(AttributeError, match="image_outputs"):
        model(input_ids=ids, pixel_values=torch.randn(1, 3, 56, 56), use_cache=False)
    config.save_pretrained(tmp_path)
    refusal = r"'llama4' is not supported: llama4 .*\(class A\), but transformers"
    with pytest.raises(UserError, match=refusal) as refused:
        load_model(tmp_path, device="cpu")
    assert "\n" not in str(refused.value)


def test_fast_vlm_is_refused_in_one_line_while_its_preprocessing_is_unknown(tmp_path):
    """FastVLM is refused by name: transformers registers no (image) processor for it, so its grid and resizing are
    the checkpoint's; the day it registers one, this test fails and says to add its adapter instead."""
    from transformers import FastVlmConfig
    from transformers.models.auto.auto_mappings import IMAGE_PROCESSOR_MAPPING_NAMES, PROCESSOR_MAPPING_NAMES

    assert "fast_vlm" not in PROCESSOR_MAPPING_NAMES and "fast_vlm" not in IMAGE_PROCESSOR_MAPPING_NAMES
    FastVlmConfig().save_pretrained(tmp_path)
    refusal = r"'fast_vlm' is not supported: fast_vlm .*\(class A\), but transformers registers no processor"
    with pytest.raises(UserError, match=refusal) as refused:
        load_model(tmp_path, device="cpu")
    assert "\n" not in str(refused.value)


def test_pixtral_in_the_llava_layout_is_refused_not_misread():
    from transformers import LlavaConfig, LlavaForConditionalGeneration, PixtralVisionConfig

    from mllm_explain.adapters.llava import LlavaAdapter

    mistral = build_adapter("mistral3")
    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 image_size=224, patch_size=16)
    config = LlavaConfig(vision_config=vision, text_config=mistral.model.config.text_config,
                         image_token_index=mistral.image_token_id)
    with pytest.raises(UserError, match="Pixtral processor"):
        LlavaAdapter(LlavaForConditionalGeneration(config), mistral.processor)


def test_a_processor_dependency_missing_is_one_line(tmp_path, monkeypatch):
    """SmolVLM's processor imports num2words when it loads: without it, one line saying so, before the weights."""
    import transformers

    adapter = build_adapter("smolvlm")
    adapter.model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)

    def missing(*_args, **_kwargs):
        raise ImportError("Package `num2words` is required to run SmolVLM processor. Install it with `pip install "
                          "num2words`.\nmore detail")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", missing)
    with pytest.raises(UserError, match="cannot load the processor of .*num2words") as refused:
        load_model(tmp_path, device="cpu")
    assert "\n" not in str(refused.value)

"""Property tests: random bytes, random image modes and sizes and random Unicode text fed to the
public API and to the command line give a result or a `UserError` (exit code 2 and one line), never
another exception.  Few, small examples on the bundled model, so they run in CI on 2 cores."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mllm_explain import Explanation, UserError, explain
from mllm_explain.cli import main
from mllm_explain.images import as_rgb, load_image

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "CMYK", "YCbCr", "HSV", "LAB", "I", "I;16", "F"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM"]
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=24)  # any Unicode but lone surrogates, including blank and control characters


@st.composite
def images(draw, max_side: int = 24) -> Image.Image:
    """A random image of a random mode and size (noise, so every mode gets varied pixel values)."""
    width, height = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    mode = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-2**20, 2**20, (height, width), dtype=np.int32), "I")
    if mode == "F":
        return Image.fromarray(rng.normal(0, draw(st.floats(0.01, 1e6)), (height, width)).astype(np.float32), "F")
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return rgb.convert("RGBA").convert(mode) if mode in ("LA", "PA") else rgb.convert(mode)


@st.composite
def image_files(draw) -> bytes:
    """Bytes of a file: pure noise, or a small image in some format, maybe truncated or with bytes flipped."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=512))
    image = draw(images(max_side=16)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=draw(st.sampled_from(FORMATS)))
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@FUZZ
@given(data=image_files())
@example(data=b"")
def test_load_image_reads_or_says_why(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "input.img"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except UserError as exc:
        assert str(exc)
    else:
        assert image.mode == "RGB" and image.width * image.height >= 1


@FUZZ
@given(image=images())
def test_every_mode_becomes_rgb_of_the_same_size(image):
    rgb = as_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == image.size


@FUZZ
@given(image=images(), prompt=text, answer=st.none() | text, method=st.sampled_from(["tam", "logit_lens"]))
@example(image=Image.new("RGB", (1, 250)), prompt="Describe.", answer=None, method="tam")  # aspect ratio
@example(image=Image.new("RGB", (8, 8)), prompt="<|image_pad|>", answer="a", method="tam")
@example(image=Image.new("RGB", (8, 8)), prompt="Describe.", answer="猫 🐱", method="tam")
def test_explain_gives_an_explanation_or_a_user_error(bundled, image, prompt, answer, method):
    try:
        result = explain(bundled, image, prompt, answer=answer, method=method, max_new_tokens=3)
    except UserError as exc:
        assert str(exc)
        return
    assert isinstance(result, Explanation)
    n = len(result.token_ids)
    assert len(result.tokens) == n and result.grid_maps.shape[0] == n and np.isfinite(result.grid_maps).all()
    assert "".join(result.tokens) == bundled.tokenizer.decode(result.token_ids, clean_up_tokenization_spaces=False)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.none() | image_files(), prompt=text, answer=st.none() | text, option=st.none() | text,
       scales=st.none() | text)
@example(data=None, prompt="Describe this image.", answer=None, option=None, scales=None)
@example(data=None, prompt="这是什么？", answer="猫 🐱", option="filter=false", scales="1,0.5")
def test_the_cli_succeeds_or_prints_one_error_line(bundled, tmp_path_factory, data, prompt, answer, option, scales):
    folder = tmp_path_factory.mktemp("cli")
    image = folder / "input.png"
    if data is None:
        Image.new("RGB", (12, 10), (30, 160, 90)).save(image)
    else:
        image.write_bytes(data)
    args = ["explain", str(image), "--prompt", prompt, "--method", "logit_lens", "--max-new-tokens", "3",
            "--out", str(folder / "out")]
    for flag, value in (("--answer", answer), ("-o", option), ("--scales", scales)):
        if value is not None:
            args += [flag, value]
    out, err = io.StringIO(), io.StringIO()
    with patch("mllm_explain.adapters.load_model", return_value=bundled), redirect_stdout(out), \
            redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main(args)
    lines = err.getvalue().splitlines()
    assert exit_.value.code in (0, 2), err.getvalue()
    if exit_.value.code == 2:
        assert len(lines) == 1 and lines[0].startswith("error:"), err.getvalue()
    else:
        assert (folder / "out" / "report.html").is_file() and not any(line.startswith("error:") for line in lines)

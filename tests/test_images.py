"""Reading user images: every colour mode as a viewer shows it, and a pixel limit checked before decoding."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mllm_explain.errors import UserError
from mllm_explain.images import MAX_PIXELS, as_rgb, header_size, load_image

RAMP16 = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` but holds no pixels: only a reader that decodes fails."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, suffix):
    path = tmp_path / f"grey16{suffix}"
    Image.fromarray(RAMP16).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I;16")
    pixels = np.asarray(load_image(path))
    assert pixels.shape == (32, 32, 3)
    expected = np.round(RAMP16 / 257.0)
    assert np.abs(pixels[..., 0].astype(float) - expected).max() <= 1
    assert pixels[0, 0, 0] == 0 and pixels[-1, -1, 0] == 255 and 120 <= pixels.mean() <= 135


@pytest.mark.parametrize("values, expected", [
    (np.array([[0, 100], [200, 255]], np.int32), [[0, 100], [200, 255]]),  # 8-bit values in an 'I' image
    (np.array([[0, 257], [32896, 65535]], np.int32), [[0, 1], [128, 255]]),  # 16-bit values
    (np.array([[-10, 0], [10, 90]], np.int32), [[0, 26], [51, 255]]),  # anything else: stretched
])
def test_32_bit_integer_pixels(values, expected):
    assert np.asarray(as_rgb(Image.fromarray(values, "I")))[..., 1].tolist() == expected


@pytest.mark.parametrize("values, expected", [
    (np.array([[0.0, 0.5], [1.0, np.nan]], np.float32), [[0, 128], [255, 0]]),
    (np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32), [[0, 64], [128, 255]]),
])
def test_float_pixels(values, expected):
    assert np.asarray(as_rgb(Image.fromarray(values, "F")))[..., 2].tolist() == expected


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    pixels = np.asarray(as_rgb(rgba))
    assert pixels[0, 0].tolist() == [255, 0, 0] and pixels[1, 1].tolist() == [255, 255, 255]
    assert np.asarray(as_rgb(Image.new("LA", (2, 2), (0, 0))))[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30])
    palette.putpixel((1, 1), 1)
    palette.info["transparency"] = 0
    assert np.asarray(as_rgb(palette)).tolist() == [[[255] * 3, [255] * 3], [[255] * 3, [10, 20, 30]]]


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "YCbCr", "HSV", "LAB", "RGBX", "I;16B"])
def test_other_modes_become_rgb(mode):
    image = as_rgb(Image.new(mode, (3, 2)))
    assert image.mode == "RGB" and image.size == (3, 2)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    side = int(MAX_PIXELS ** 0.5) + 1
    with pytest.raises(UserError, match=f"{side}x{side} pixels, more than the limit"):
        load_image(png_header_only(tmp_path / "big.png", side, side))
    with pytest.raises(UserError, match="more pixels than the limit"):  # PIL's own bomb check fires first
        load_image(png_header_only(tmp_path / "huge.png", 20000, 20000))
    with pytest.raises(UserError, match="more than the limit"):
        as_rgb(Image.new("1", (side, side)))



def test_no_pil_size_warning_escapes(tmp_path):
    path = png_header_only(tmp_path / "100mp.png", 10000, 10000)  # above PIL's warning size, below its error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match="10000x10000 pixels"):
            load_image(path)
        assert header_size(path) == (10000, 10000)


def test_unreadable_paths(tmp_path):
    with pytest.raises(UserError, match="cannot read image"):
        load_image(tmp_path / ("x" * 300 + ".png"))  # name too long for the file system
    with pytest.raises(UserError, match="not a file"):
        load_image(tmp_path)


def rotated_jpeg(upright: Image.Image, path: Path, orientation: int = 6) -> Path:
    """`upright` stored as a camera stores a photo taken turned: pixels a quarter turn off, and the EXIF
    orientation (6: turn 90 degrees clockwise to view) that tells a viewer how to turn them back."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # undone by orientation 6's ROTATE_270
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, quality=95, exif=exif)
    return path


def test_exif_orientation_is_applied(tmp_path):
    upright = Image.new("RGB", (60, 40), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 20, 10))  # red in the top-left corner of the upright image
    path = rotated_jpeg(upright, tmp_path / "photo.jpg")
    assert header_size(path) == (40, 60)  # stored tall
    pixels = np.asarray(load_image(path)).astype(int)
    assert pixels.shape == (40, 60, 3)
    assert np.abs(pixels - np.asarray(upright).astype(int)).mean() < 4  # JPEG's error only

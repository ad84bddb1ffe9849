"""Reading user images as 8-bit RGB, with errors a person can act on.

Every colour mode becomes what a viewer would show: 16-bit greyscale is scaled to 8 bits (65535 ->
255) instead of clipped to white; 32-bit integer pixels are taken as 8-bit when they lie in 0-255,
as 16-bit when in 0-65535 and are otherwise stretched from their minimum to their maximum;
floating-point pixels in [0, 1] are scaled by 255 and otherwise stretched; transparency is
composited onto white, as Hugging Face image processors do.  A photo's EXIF orientation is applied
(`ImageOps.exif_transpose`), so the image is explained upright, as every viewer and transformers'
own `load_image` show it.  Images above `MAX_PIXELS` are refused before they are decoded.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mllm_explain.errors import UserError

MAX_PIXELS = 8192 * 8192  # 64 megapixels: an 8-bit RGB copy is 192 MB; docs/PERFORMANCE.md, "Limits"
ORIENTATION_TAG = 0x0112  # EXIF's orientation: 1 upright, 2-8 a mirror and/or a turn to undo
QUARTER_TURNS = (5, 6, 7, 8)  # the orientations whose undoing swaps width and height


def load_image(path: str | Path) -> Image.Image:
    """Open `path` as an upright RGB image (EXIF orientation applied), or raise UserError naming what is
    wrong with it."""
    path = Path(path)
    try:
        if not path.exists():
            raise UserError(f"image not found: {path}")
        if not path.is_file():
            raise UserError(f"not a file: {path}")
    except OSError as exc:  # a name too long, a folder we may not search, ...
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return _decode(path, path)


def read_image(data: bytes, name: str = "the upload") -> Image.Image:
    """`load_image` of an image file's bytes (e.g. an upload), the same checks and errors naming `name`."""
    if not data:
        raise UserError(f"{name} is empty (no bytes)")
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | io.BytesIO, name: object) -> Image.Image:
    """The upright RGB image of an image file (a path or its bytes), size checked before decoding."""
    with _opened(source, name) as image:
        check_size(image.width, image.height, name)
        image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = as_rgb(upright)
        return image.copy() if rgb is image else rgb  # the file's image is closed on leaving


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) of the stored pixels from an image file's header, without decoding them."""
    with _opened(path) as image:
        return image.size


def header_mode(path: Path) -> str:
    """PIL's mode of the image file at `path` ('L', 'P', 'RGB', ...), from its header."""
    with _opened(path) as image:
        return image.mode


def orientation(path: Path) -> int:
    """The EXIF orientation of the image file at `path` (1, upright, when it has none), from its header."""
    with _opened(path) as image:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    return value if value in range(2, 9) else 1


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(width, height) of a stored `size` once `orientation` is undone: swapped by a quarter turn."""
    return size[::-1] if orientation in QUARTER_TURNS else size


def make_upright(image: Image.Image, orientation: int) -> Image.Image:
    """`image` (e.g. a mask drawn on a photo's stored pixels) turned as `load_image` turns the photo:
    `ImageOps.exif_transpose` with the photo's `orientation`."""
    image = image.copy()
    image.getexif()[ORIENTATION_TAG] = orientation
    return ImageOps.exif_transpose(image)


@contextmanager
def _opened(source: Path | io.BytesIO, name: object = None) -> Iterator[Image.Image]:
    """`Image.open(source)` with every failure a UserError naming `name` (default: `source`, a path; PIL's decoders
    fail on malformed files with many exception types) and without PIL's own size warning (our limit is lower)."""
    name = source if name is None else name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                yield image
    except Image.DecompressionBombError:
        raise UserError(f"image {name} has more pixels than the limit of {MAX_PIXELS:,} (64 megapixels); "
                        "scale it down first") from None
    except UnidentifiedImageError:
        raise UserError(f"not an image file (unrecognised format): {name}") from None
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot read image {name}: {type(exc).__name__}: {exc}") from None


def check_size(width: int, height: int, name: object = "the image") -> None:
    """Refuse an empty image or one above `MAX_PIXELS` (checked from the header, before decoding)."""
    if width < 1 or height < 1:
        raise UserError(f"image {name} is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise UserError(f"image {name} is {width}x{height} pixels, more than the limit of {MAX_PIXELS:,} "
                        "(64 megapixels); scale it down first")


def as_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB the way a viewer shows it (see the module docstring; an RGB image itself);
    checks its size."""
    check_size(image.width, image.height)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        return Image.fromarray(_grey_to_uint8(np.asarray(image), mode), "L").convert("RGB")
    try:
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
        return image.convert("RGB")
    except ValueError as exc:  # a mode PIL cannot convert (e.g. 'La')
        raise UserError(f"cannot convert a {mode!r} image to RGB: {exc}") from None


def _grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """One-channel 16-bit, 32-bit integer or float pixels as 0-255 (module docstring for the rule)."""
    if mode.startswith("I;16"):
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= (1.0 if mode == "F" else 255.0):
        scale, low = (255.0 if mode == "F" else 1.0), 0.0
    elif mode == "I" and low >= 0 and high <= 65535:
        scale, low = 255.0 / 65535, 0.0
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.round((values - low) * scale), 0, 255).astype(np.uint8)

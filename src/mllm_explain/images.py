"""Reading user images with errors a person can act on."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mllm_explain.errors import UserError


def load_image(path: str | Path) -> Image.Image:
    """Open `path` as an RGB image, or raise UserError naming what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"image not found: {path}")
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise UserError(f"not an image file (unrecognised format): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None

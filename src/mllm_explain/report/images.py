"""Pixels for the report: JET heat-map colouring, 50/50 overlays, downscaling and data URIs."""

from __future__ import annotations

import base64
import io
import re

import cv2
import numpy as np
from PIL import Image

MAX_EMBED_SIDE = 512  # longest side of images embedded in report.html, to keep the file small


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """RGB uint8 JET colouring of a map in [0, 1] (NaN counts as 0, values outside are clipped)."""
    scaled = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0) * 255.0
    bgr = cv2.applyColorMap(np.round(scaled).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The heat map blended over `image` (weight `alpha` for the map), resized to the image if needed."""
    rgb = np.asarray(image.convert("RGB"))
    colours = heat_colours(heat)
    if colours.shape[:2] != rgb.shape[:2]:
        colours = cv2.resize(colours, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return Image.fromarray(cv2.addWeighted(colours, alpha, rgb, 1.0 - alpha, 0.0))


def embed_size(width: int, height: int, max_side: int = MAX_EMBED_SIDE, enlarge: bool = False) -> tuple[int, int]:
    """(width, height) scaled down so the longest side is at most `max_side`; scaled up to it only
    with `enlarge` (for the on-page display size of small images, never for stored pixels)."""
    scale = max_side / max(width, height, 1)
    scale = scale if enlarge else min(1.0, scale)
    return max(1, round(width * scale)), max(1, round(height * scale))


def display_image(image: Image.Image, max_side: int = MAX_EMBED_SIDE) -> Image.Image:
    """`image` in RGB with its longest side at most `max_side` (`embed_size`; Lanczos), as every page and PNG shows
    it; the image itself where it is already so."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    size = embed_size(rgb.width, rgb.height, max_side)
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def heat_image(heat: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """The heat map alone, JET-coloured at `size` (width, height); the page blends it over the image."""
    small = cv2.resize(np.nan_to_num(np.asarray(heat, dtype=np.float32)), size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(heat_colours(small))


def data_uri(image: Image.Image, fmt: str = "JPEG", quality: int = 85) -> str:
    """`image` encoded as a base64 data URI, so the report needs no side files."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt, quality=quality)
    mime = "jpeg" if fmt.upper() == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def safe_name(word: str, limit: int = 40) -> str:
    """ASCII letters and digits of `word` (at most `limit`), or 'word' when none are left."""
    return re.sub(r"[^A-Za-z0-9]", "", word)[:limit] or "word"

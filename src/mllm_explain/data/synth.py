"""Synthetic grounded scenes: images, per-pixel category masks and captions derived from the scene.

Each category is one English noun drawn with its own silhouette and surface pattern (real object
categories differ in both).  Scenes hold 1-5 objects that may partially occlude each other on a
textured, cluttered background; captions name every object with its colour, count, size and a
spatial relation, so they mix function words, adjectives, relations and object nouns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image

from mllm_explain.errors import UserError
from mllm_explain.outputs import atomic_path, write_text

CATEGORIES: tuple[str, ...] = (
    "circle", "ring", "square", "triangle", "star", "cross",
    "heart", "diamond", "moon", "arrow", "hexagon",
)
PLURALS: dict[str, str] = {name: name + ("es" if name.endswith("s") else "s") for name in CATEGORIES}
CATEGORY_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(CATEGORIES)}
# Every noun a caption uses for a category (singular and plural) -> the category.
NOUN_CATEGORY: dict[str, str] = {**{name: name for name in CATEGORIES}, **{p: name for name, p in PLURALS.items()}}

COLOURS: dict[str, tuple[int, int, int]] = {  # RGB
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 50),
    "blue": (40, 80, 230),
    "purple": (140, 50, 190),
    "pink": (250, 120, 190),
}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
SPLITS = ("train", "val", "test")
DEFAULT_PROMPT = "Describe this image."
SMALL_AREA, LARGE_AREA = 0.07, 0.2  # fraction of the image an object covers


# --- silhouettes: functions of (x, y) grids in object-local units, radius ~1 -------------------

def _polygon(points: list[tuple[float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    path = np.asarray(points, dtype=np.float64)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.zeros(x.shape, dtype=bool)
        n = len(path)
        for i in range(n):  # even-odd rule, vectorised over pixels
            x0, y0 = path[i]
            x1, y1 = path[(i + 1) % n]
            crosses = (y0 > y) != (y1 > y)
            x_at = (x1 - x0) * (y - y0) / np.where(y1 == y0, 1e-9, y1 - y0) + x0
            result ^= crosses & (x < x_at)
        return result

    return inside


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


def _star_points() -> list[tuple[float, float]]:
    outer, inner = _regular(5, 1.0), _regular(5, 0.42, -math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, inner) for p in pair]


SILHOUETTES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda x, y: x**2 + y**2 <= 1.0,
    "ring": lambda x, y: (x**2 + y**2 <= 1.0) & (x**2 + y**2 >= 0.5**2),
    "square": _polygon([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]),
    "triangle": _polygon(_regular(3, 1.05, -math.pi / 2)),
    "star": _polygon(_star_points()),
    "cross": lambda x, y: ((np.abs(x) <= 0.3) & (np.abs(y) <= 0.95)) | ((np.abs(y) <= 0.3) & (np.abs(x) <= 0.95)),
    "heart": lambda x, y: (x**2 + (-y * 1.1 + 0.1) ** 2 - 0.6) ** 3 - x**2 * (-y * 1.1 + 0.1) ** 3 <= 0,
    "diamond": _polygon([(0, -1.0), (0.62, 0), (0, 1.0), (-0.62, 0)]),
    "moon": lambda x, y: (x**2 + y**2 <= 1.0) & ((x - 0.45) ** 2 + (y + 0.1) ** 2 >= 0.8**2),
    "arrow": _polygon([(-1.0, -0.25), (0.1, -0.25), (0.1, -0.7), (1.0, 0.0), (0.1, 0.7), (0.1, 0.25), (-1.0, 0.25)]),
    "hexagon": _polygon(_regular(6, 1.0, 0.0)),
}


def _unit_area(category: str, samples: int = 400) -> float:
    """Area of a silhouette in object-local units, so objects can be drawn at a requested area."""
    axis = np.linspace(-1.2, 1.2, samples)
    x, y = np.meshgrid(axis, axis)
    return float(SILHOUETTES[category](x, y).mean() * 2.4**2)


UNIT_AREAS: dict[str, float] = {name: _unit_area(name) for name in CATEGORIES}

# Surface patterns, one per category (period in pixels): the second shade fills where the pattern
# is True.  A distinct texture makes each category recognisable from a few patches, as real object
# categories are by their surfaces, not only by their outline.
PATTERNS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "solid": lambda u, v: np.zeros(u.shape, dtype=bool),
    "hstripes": lambda u, v: (v // 3) % 2 == 0,
    "vstripes": lambda u, v: (u // 3) % 2 == 0,
    "diagonal": lambda u, v: ((u + v) // 3) % 2 == 0,
    "antidiagonal": lambda u, v: ((u - v) // 3) % 2 == 0,
    "checker": lambda u, v: ((u // 4) + (v // 4)) % 2 == 0,
    "dots": lambda u, v: ((u % 6) - 2.5) ** 2 + ((v % 6) - 2.5) ** 2 <= 2.5,
    "grid": lambda u, v: (u % 6 < 2) | (v % 6 < 2),
    "wide_hstripes": lambda u, v: (v // 7) % 2 == 0,
    "wide_vstripes": lambda u, v: (u // 7) % 2 == 0,
    "big_dots": lambda u, v: ((u % 12) - 5.5) ** 2 + ((v % 12) - 5.5) ** 2 <= 12,
}
CATEGORY_PATTERN: dict[str, str] = {
    "circle": "solid", "ring": "big_dots", "square": "hstripes", "triangle": "vstripes", "star": "diagonal",
    "cross": "antidiagonal", "heart": "checker", "diamond": "grid", "moon": "dots", "arrow": "wide_hstripes",
    "hexagon": "wide_vstripes",
}


@dataclass
class SceneObject:
    """One drawn object: its category, colour, full-silhouette area fraction and centroid (x, y)."""

    category: str
    colour: str
    area: float
    center: tuple[float, float]
    mask: np.ndarray = field(repr=False)


@dataclass
class Scene:
    """A rendered scene: RGB image, category-id mask, objects and the caption derived from them."""

    image: np.ndarray
    seg_label: np.ndarray
    objects: list[SceneObject]
    caption: str

    @property
    def categories(self) -> dict[str, int]:
        return {o.category: CATEGORY_IDS[o.category] for o in self.objects}


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-saturation gradient + noise + clutter (thin lines and faint blobs) that is not an object."""
    base = rng.uniform(90, 210)
    tint = rng.uniform(-18, 18, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) * rng.uniform(-40, 40)
    img = base + tint[None, None, :] + ramp[..., None]
    img = img + rng.standard_normal((height, width, 3), dtype=np.float32) * rng.uniform(3, 12)
    coarse = cv2.resize(rng.normal(0, 12, size=(8, 8)).astype(np.float32), (width, height))
    img = img + coarse[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 9)):
        grey = int(rng.uniform(40, 230))
        shade = tuple(int(np.clip(grey + rng.uniform(-15, 15), 0, 255)) for _ in range(3))
        if rng.random() < 0.6:
            p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(img, p0, p1, shade, int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
        else:
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, shade, -1, lineType=cv2.LINE_AA)
    return img


def _object_mask(rng: np.random.Generator, category: str, height: int, width: int, area: float) -> np.ndarray:
    radius = min(math.sqrt(area * height * width / UNIT_AREAS[category]), 0.7 * min(height, width))
    cx = rng.uniform(radius * 0.7, width - radius * 0.7)
    cy = rng.uniform(radius * 0.7, height - radius * 0.7)
    theta = math.radians(rng.uniform(-20, 20))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = (xx - cx) / radius, (yy - cy) / radius
    x = math.cos(theta) * dx + math.sin(theta) * dy
    y = -math.sin(theta) * dx + math.cos(theta) * dy
    return SILHOUETTES[category](x, y)


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, category: str, colour: str) -> None:
    rgb = np.asarray(COLOURS[colour], dtype=np.float32) * rng.uniform(0.85, 1.08)
    rgb = np.clip(rgb + rng.uniform(-12, 12, size=3), 0, 255)
    second = rgb * 0.4
    vv, uu = np.nonzero(mask)
    shifted_u, shifted_v = uu + int(rng.integers(0, 8)), vv + int(rng.integers(0, 8))
    use_second = PATTERNS[CATEGORY_PATTERN[category]](shifted_u, shifted_v)
    pixels = np.where(use_second[:, None], second[None, :], rgb[None, :])
    pixels = pixels + rng.normal(0, 4, size=pixels.shape)
    image[vv, uu] = np.clip(pixels, 0, 255).astype(np.uint8)


def _sample_objects(rng: np.random.Generator, height: int, width: int, max_objects: int,
                    area_range: tuple[float, float]) -> list[SceneObject]:
    weights = np.array([0.2, 0.25, 0.25, 0.18, 0.12])[:max_objects]
    count = int(rng.choice(np.arange(1, max_objects + 1), p=weights / weights.sum()))
    max_total = 0.75
    objects: list[SceneObject] = []
    for _ in range(count * 20):  # rejection sampling: keep every object at least 60% visible
        if len(objects) == count:
            break
        category = str(rng.choice(CATEGORIES))
        colour = str(rng.choice(list(COLOURS)))
        if objects and rng.random() < 0.25:  # repeats make counts ("two red circles") common enough
            twin = objects[int(rng.integers(0, len(objects)))]
            category, colour = twin.category, twin.colour
        budget = max_total - sum(o.area for o in objects)
        if budget < 0.03:
            break
        low, high = area_range
        area = float(np.exp(rng.uniform(math.log(low), math.log(max(low, min(high, budget))))))
        mask = _object_mask(rng, category, height, width, area)
        full = mask.sum()
        if full < 50:
            continue
        trial = [o.mask & ~mask for o in objects]
        if any(t.sum() < 0.6 * o.mask.sum() for t, o in zip(trial, objects)):
            continue
        vv, uu = np.nonzero(mask)
        objects.append(SceneObject(category, colour, float(full) / (height * width),
                                   (float(uu.mean()), float(vv.mean())), mask))
    return objects


def _noun_phrase(group: list[SceneObject]) -> str:
    first = group[0]
    if len(group) > 1:
        return f"{NUMBER_WORDS[len(group)]} {first.colour} {PLURALS[first.category]}"
    size = "small " if first.area < SMALL_AREA else "large " if first.area > LARGE_AREA else ""
    words = f"{size}{first.colour} {first.category}"
    return ("an " if words[0] in "aeiou" else "a ") + words


def _relation(a: list[SceneObject], b: list[SceneObject]) -> str:
    ax, ay = np.mean([o.center for o in a], axis=0)
    bx, by = np.mean([o.center for o in b], axis=0)
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def _region(obj: SceneObject, height: int, width: int) -> str:
    x, y = obj.center
    col = "left" if x < width / 3 else "right" if x > 2 * width / 3 else ""
    row = "top" if y < height / 3 else "bottom" if y > 2 * height / 3 else ""
    if not row and not col:
        return "center"
    return f"{row} {col}".strip()


def caption_for(objects: list[SceneObject], height: int, width: int) -> str:
    """Describe every object, left to right, in 1-3 sentences with counts, sizes and relations."""
    groups: dict[tuple[str, str], list[SceneObject]] = {}
    for obj in sorted(objects, key=lambda o: o.center[0]):
        groups.setdefault((obj.category, obj.colour), []).append(obj)
    ordered = list(groups.values())
    if len(ordered) == 1:
        verb = "are" if len(ordered[0]) > 1 else "is"
        where = "" if len(ordered[0]) > 1 else f" in the {_region(ordered[0][0], height, width)} of the image"
        return f"There {verb} {_noun_phrase(ordered[0])}{where}."
    sentences = []
    for i in range(0, len(ordered), 2):
        pair = ordered[i:i + 2]
        verb = "are" if len(pair[0]) > 1 else "is"
        if len(pair) == 1:
            sentences.append(f"There {verb} also {_noun_phrase(pair[0])}.")
        elif i == 0:
            sentences.append(f"There {verb} {_noun_phrase(pair[0])} {_relation(*pair)} {_noun_phrase(pair[1])}.")
        else:
            text = f"{_noun_phrase(pair[0])} {verb} {_relation(*pair)} {_noun_phrase(pair[1])}."
            sentences.append(text[0].upper() + text[1:])
    return " ".join(sentences)


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent stream per (seed, split, index): splits never share a scene."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return np.random.default_rng([seed, SPLITS.index(split), index])


def random_size(rng: np.random.Generator, low: int = 224, high: int = 448) -> tuple[int, int]:
    """(width, height), each side in [low, high] px, aspect ratio at most 1.6."""
    while True:
        width, height = (int(v) for v in rng.integers(low, high + 1, size=2))
        if max(width, height) / min(width, height) <= 1.6:
            return width, height


def render_scene(rng: np.random.Generator, size: tuple[int, int] | None = None, max_objects: int = 5,
                 area_range: tuple[float, float] = (0.03, 0.4)) -> Scene:
    """Draw one scene of 1..`max_objects` objects, each covering a fraction of the image drawn
    log-uniformly from `area_range`; `size` is (width, height), random when None."""
    width, height = size if size is not None else random_size(rng)
    image = _background(rng, height, width)
    objects = _sample_objects(rng, height, width, max_objects, area_range)
    seg = np.zeros((height, width), dtype=np.uint8)
    for obj in objects:  # painter's order: later objects occlude earlier ones
        _paint(rng, image, obj.mask, obj.category, obj.colour)
        seg[obj.mask] = CATEGORY_IDS[obj.category]
    for obj in objects:
        obj.mask = seg == CATEGORY_IDS[obj.category]
    return Scene(image, seg, objects, caption_for(objects, height, width))


def iter_scenes(n: int, seed: int, split: str) -> Iterator[Scene]:
    for index in range(n):
        yield render_scene(scene_rng(seed, split, index))


def write_dataset(out: Path, n: int, seed: int, split: str, progress: Callable[[int], None] | None = None) -> Path:
    """Write `n` scenes in the TAM GranDf/OpenPSG layout: image/, seg_label/, anno.json."""
    (out / "image").mkdir(parents=True, exist_ok=True)
    (out / "seg_label").mkdir(parents=True, exist_ok=True)
    records = []
    for index, scene in enumerate(iter_scenes(n, seed, split)):
        name = f"{split}_{index:06d}.png"
        Image.fromarray(scene.image).save(out / "image" / name)
        Image.fromarray(scene.seg_label, mode="L").save(out / "seg_label" / name)
        records.append([f"image/{name}", scene.caption, f"seg_label/{name}", scene.categories])
        if progress:
            progress(1)
    anno = out / "anno.json"
    write_text(anno, json.dumps(records, indent=1))  # last and atomic: a dataset is complete once it exists
    return anno


@dataclass
class Clip:
    """A rendered clip: frames (RGB), and one object (`transient`, its category) that enters at frame `enters` and
    stays; the other objects are in every frame.  `seg_label` is the last frame's category-id mask."""

    frames: list[np.ndarray]
    transient: str
    enters: int
    objects: list[SceneObject]
    seg_label: np.ndarray

    def shows(self, category: str) -> list[bool]:
        """Whether each frame shows `category`."""
        return [category != self.transient or index >= self.enters for index in range(len(self.frames))]


def render_clip(rng: np.random.Generator, frames: int = 8, size: tuple[int, int] = (336, 336)) -> Clip:
    """A still scene of two or three objects, one of which is painted only from the middle frame on (a slight
    noise per frame keeps the frames apart, as a camera's would)."""
    width, height = size
    while True:
        objects = _sample_objects(rng, height, width, 3, (0.05, 0.25))
        categories = [o.category for o in objects]
        if len(objects) >= 2 and categories.count(categories[-1]) == 1:
            break
    background = _background(rng, height, width)
    for obj in objects[:-1]:
        _paint(rng, background, obj.mask, obj.category, obj.colour)
    full = background.copy()
    _paint(rng, full, objects[-1].mask, objects[-1].category, objects[-1].colour)
    seg = np.zeros((height, width), dtype=np.uint8)
    for obj in objects:
        seg[obj.mask] = CATEGORY_IDS[obj.category]
    enters = frames // 2
    noisy = [np.clip((full if index >= enters else background) + rng.normal(0, 2, full.shape), 0, 255).astype(np.uint8)
             for index in range(frames)]
    return Clip(noisy, objects[-1].category, enters, objects, seg)


def write_clips(out: Path, n: int, seed: int, split: str, frames: int = 8, fps: float = 2.0) -> Path:
    """Write `n` clips as MP4 files (PyAV, the `video` extra) and clips.json: per clip its file, frame rate, the
    transient object's category and the frame it enters at, and every category present."""
    try:
        import av
    except ImportError:
        raise UserError("writing video needs PyAV: pip install 'mllm-explain[video]'") from None
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(n):
        clip = render_clip(scene_rng(seed, split, index), frames)
        name = f"{split}_clip_{index:06d}.mp4"
        with atomic_path(out / name) as temp, av.open(str(temp), mode="w", format="mp4") as container:
            stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = clip.frames[0].shape[1], clip.frames[0].shape[0], "yuv420p"
            stream.bit_rate = 4_000_000  # high enough that the objects' colours survive the compression
            for frame in clip.frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        records.append({"video": name, "fps": fps, "frames": frames, "transient": clip.transient,
                        "enters": clip.enters, "categories": sorted({o.category for o in clip.objects})})
    manifest = out / "clips.json"
    write_text(manifest, json.dumps(records, indent=1))
    return manifest

"""Evaluation samples in the layouts TAM's evaluation exports (DESIGN §6).

- `grandf`, `openpsg`, `synthetic`: `anno.json`, a list of
  `[image_path, caption, seg_label_path, {category_name: id}]` with paths relative to the folder;
  the category dictionary is the record's own.
- `coco14`: `image/`, `seg_label/<image stem>.png`, `annotations/instances_minival2014.json` (the
  images to use and the category names and ids, one dictionary for the whole set) and
  `annotations/captions_val2014.json` (reference captions).

Segmentation labels are PNGs whose pixel value is the category id (0 = background).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mllm_explain.data.synth import DEFAULT_PROMPT
from mllm_explain.errors import UserError
from mllm_explain.images import check_size, header_size, make_upright, orientation, upright_size

FORMATS: tuple[str, ...] = ("synthetic", "coco14", "grandf", "openpsg")

# TAM's prompts (eval.py); DESIGN §6 abbreviates the last two.
DEFAULT_PROMPTS: dict[str, str] = {
    "synthetic": DEFAULT_PROMPT,
    "coco14": "Write a one-sentence caption for this image:",
    "grandf": "Write a description for this image using around two sentences:",
    "openpsg": "Write a description for this image using around three sentences:",
}


@dataclass(frozen=True)
class Sample:
    """One image to caption and score: reference captions, its category-id mask and the categories
    a caption word may match."""

    sample_id: str
    image: Path
    references: tuple[str, ...]
    seg_label: Path
    categories: dict[str, int]
    prompt: str

    @property
    def caption(self) -> str:
        """The reference caption teacher-forced by `--answer reference` (the first one)."""
        return self.references[0]

    def mask(self) -> np.ndarray:
        """The (H, W) category-id mask over the upright image.  A photo with an EXIF orientation is read
        upright (`images.load_image`); a mask of its stored pixels' size is turned with it (a mask
        already of the upright size is kept; for a half turn or a mirror, where the two sizes agree,
        the mask is taken to be drawn on the stored pixels, as pixel arrays are)."""
        mask = load_mask(self.seg_label)
        turn = orientation(self.image)
        if turn == 1 or mask.shape[::-1] != header_size(self.image):
            return mask
        return np.asarray(make_upright(Image.fromarray(mask), turn))


def load_mask(path: Path) -> np.ndarray:
    """A seg-label PNG as an (H, W) integer array of category ids (palette indices for 'P' PNGs)."""
    try:
        with Image.open(path) as image:
            values = np.asarray(image)
    except OSError as exc:
        raise UserError(f"cannot read segmentation label {path}: {exc}") from None
    return values[..., 0] if values.ndim == 3 else values


def load_samples(data: Path, fmt: str, prompt: str | None = None) -> list[Sample]:
    """Every sample of the dataset at `data` in layout `fmt`, with `prompt` or the format's default."""
    if fmt not in FORMATS:
        raise UserError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not data.is_dir():
        raise UserError(f"dataset folder not found: {data}")
    text = prompt or DEFAULT_PROMPTS[fmt]
    samples = _coco14(data, text) if fmt == "coco14" else _anno_json(data, text)
    missing = [p for s in samples for p in (s.image, s.seg_label) if not p.is_file()]
    if missing:
        raise UserError(f"{len(missing)} file(s) named by the {fmt} annotations are missing, e.g. {missing[0]}")
    if not samples:
        raise UserError(f"no samples in {data}")
    check_mask_sizes(samples)
    return samples


def check_mask_sizes(samples: list[Sample]) -> None:
    """Refuse, before any model work, images above the pixel limit and masks whose size differs from
    their image's (scoring would stretch the mask over the image and compare the wrong pixels).
    Reads only the files' headers."""
    wrong = []
    for sample in samples:
        sizes = [header_size(path) for path in (sample.image, sample.seg_label)]
        check_size(*sizes[0], sample.image)
        if sizes[1] not in (sizes[0], upright_size(sizes[0], orientation(sample.image))):
            wrong.append((sample, *sizes))
    if wrong:
        sample, image, mask = wrong[0]
        raise UserError(f"{len(wrong)} segmentation label(s) differ in size from their image, e.g. "
                        f"{sample.seg_label} is {mask[0]}x{mask[1]} but {sample.image} is {image[0]}x{image[1]}")


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def _anno_json(data: Path, prompt: str) -> list[Sample]:
    records = _read_json(data / "anno.json", "annotation file anno.json")
    samples = []
    for index, record in enumerate(records if isinstance(records, list) else [None]):
        if not (isinstance(record, list) and len(record) == 4 and isinstance(record[3], dict)):
            raise UserError(f"{data / 'anno.json'}: record {index} is not "
                            "[image_path, caption, seg_label_path, {category: id}]")
        image, caption, seg_label, categories = record
        samples.append(Sample(f"{index:06d}-{Path(image).stem}", data / image, (str(caption),), data / seg_label,
                              {str(k): int(v) for k, v in categories.items()}, prompt))
    return samples


def _coco14(data: Path, prompt: str) -> list[Sample]:
    for folder in ("image", "seg_label", "annotations"):
        if not (data / folder).is_dir():
            raise UserError(f"COCO14 layout needs {data / folder}/ (image/, seg_label/, annotations/)")
    instances = _read_json(data / "annotations" / "instances_minival2014.json", "COCO instances file")
    captions = _read_json(data / "annotations" / "captions_val2014.json", "COCO captions file")
    try:
        categories = {c["name"]: int(c["id"]) for c in instances["categories"]}
        references: dict[int, list[str]] = {}
        for annotation in captions["annotations"]:
            references.setdefault(int(annotation["image_id"]), []).append(annotation["caption"].strip())
        images = [(int(i["id"]), i.get("file_name", "")) for i in instances["images"]]
    except (KeyError, TypeError) as exc:
        raise UserError(f"COCO annotation files lack an expected field: {exc}") from None
    samples = []
    for index, (image_id, file_name) in enumerate(images):
        if image_id not in references:
            raise UserError(f"captions_val2014.json has no caption for image id {image_id}")
        image = _coco_image(data / "image", image_id, file_name)
        samples.append(Sample(f"{index:06d}-{image.stem}", image, tuple(references[image_id]),
                              data / "seg_label" / f"{image.stem}.png", categories, prompt))
    return samples


def _coco_image(folder: Path, image_id: int, file_name: str) -> Path:
    """The image as TAM's export names it (`<id:012d>.jpg`), else under its COCO file name."""
    exported = folder / f"{image_id:012d}.jpg"
    return exported if exported.is_file() or not file_name else folder / file_name

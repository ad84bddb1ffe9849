"""Evaluation samples in the layouts TAM's evaluation exports (DESIGN §6).

- `grandf`, `openpsg`, `synthetic`: `anno.json`, a list of
  `[image_path, caption, seg_label_path, {category_name: id}, ...]` with paths relative to the folder
  (fields after the fourth are ignored, as TAM ignores them); the category dictionary is the record's own.
- `coco14`: `image/`, `seg_label/<image stem>.png`, `annotations/instances_minival2014.json` (the
  images to use and the category names and ids, one dictionary for the whole set; without
  `categories`, TAM's fixed table) and `annotations/captions_val2014.json` (reference captions).

Segmentation labels are PNGs whose pixel value is the category id (0 = background).  Where TAM's code
reads what ours would refuse, `--protocol tam` reads it as TAM does, with one `note:` line: a missing
label is an empty mask, a label of another size than its image is kept (maps are resized to it).
Palette PNGs: our protocol reads their palette *indices* (where segmentation datasets store class
ids; a grey conversion would give the palette colours' luminance); TAM's reads them grey (OpenCV).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mllm_explain.data.synth import DEFAULT_PROMPT
from mllm_explain.errors import UserError
from mllm_explain.images import check_size, header_mode, header_size, make_upright, orientation, upright_size

FORMATS: tuple[str, ...] = ("synthetic", "coco14", "grandf", "openpsg")
PROTOCOLS: tuple[str, ...] = ("ours", "tam")

# COCO's 80 categories as TAM's eval.py names them (its fixed table: 'ball' and 'glass' where COCO's own
# file says 'sports ball' and 'wine glass'): an instances file without `categories` gets it, and so does
# every COCO run under --protocol tam, as TAM never reads the file's.
TAM_COCO_CATEGORIES: dict[str, int] = {
    "person": 1, "bicycle": 2, "car": 3, "motorcycle": 4, "airplane": 5, "bus": 6, "train": 7, "truck": 8, "boat": 9,
    "traffic light": 10, "fire hydrant": 11, "stop sign": 13, "parking meter": 14, "bench": 15, "bird": 16,
    "cat": 17, "dog": 18, "horse": 19, "sheep": 20, "cow": 21, "elephant": 22, "bear": 23, "zebra": 24,
    "giraffe": 25, "backpack": 27, "umbrella": 28, "handbag": 31, "tie": 32, "suitcase": 33, "frisbee": 34,
    "skis": 35, "snowboard": 36, "ball": 37, "kite": 38, "baseball bat": 39, "baseball glove": 40,
    "skateboard": 41, "surfboard": 42, "tennis racket": 43, "bottle": 44, "glass": 46, "cup": 47, "fork": 48,
    "knife": 49, "spoon": 50, "bowl": 51, "banana": 52, "apple": 53, "sandwich": 54, "orange": 55,
    "broccoli": 56, "carrot": 57, "hot dog": 58, "pizza": 59, "donut": 60, "cake": 61, "chair": 62, "couch": 63,
    "potted plant": 64, "bed": 65, "dining table": 67, "toilet": 70, "tv": 72, "laptop": 73, "mouse": 74,
    "remote": 75, "keyboard": 76, "cell phone": 77, "microwave": 78, "oven": 79, "toaster": 80, "sink": 81,
    "refrigerator": 82, "book": 84, "clock": 85, "vase": 86, "scissors": 87, "teddy bear": 88, "hair drier": 89,
    "toothbrush": 90}

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

    def mask(self, protocol: str = "ours") -> np.ndarray | None:
        """The (H, W) category-id mask over the upright image.  A photo with an EXIF orientation is read
        upright (`images.load_image`); a mask of its stored pixels' size is turned with it (a mask
        already of the upright size is kept; for a half turn or a mirror, where the two sizes agree,
        the mask is taken to be drawn on the stored pixels, as pixel arrays are).

        Under TAM's protocol the file is read as TAM's code reads it: OpenCV's grey level, not turned,
        and None when it is missing."""
        if protocol == "tam":
            if not self.seg_label.is_file():
                return None
            mask = cv2.imread(str(self.seg_label), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise UserError(f"cannot read segmentation label {self.seg_label}")
            return mask
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


def load_samples(data: Path, fmt: str, prompt: str | None = None, protocol: str = "ours",
                 notice: Callable[[str], None] | None = None) -> list[Sample]:
    """Every sample of the dataset at `data` in layout `fmt`, with `prompt` or the format's default.  What
    `protocol` "tam" reads where ours refuses (module docstring) is announced through `notice`."""
    if fmt not in FORMATS:
        raise UserError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not data.is_dir():
        raise UserError(f"dataset folder not found: {data}")
    notice = notice or (lambda _line: None)
    text = prompt or DEFAULT_PROMPTS[fmt]
    samples = _coco14(data, text, protocol, notice) if fmt == "coco14" else _anno_json(data, text)
    missing = [s.image for s in samples if not s.image.is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) named by the {fmt} annotations are missing, e.g. {missing[0]}")
    if not samples:
        raise UserError(f"no samples in {data}")
    check_masks(samples, protocol, notice)
    return samples


def check_masks(samples: list[Sample], protocol: str = "ours", notice: Callable[[str], None] = print) -> None:
    """Refuse, before any model work, images above the pixel limit, and under our protocol missing masks and
    masks whose size differs from their image's (scoring would stretch the mask over the image and compare
    the wrong pixels); TAM's protocol reads both as TAM does, with a note.  Palette masks get a note saying
    how they are read.  Reads only the files' headers."""
    missing, wrong, palette = [], [], []
    for sample in samples:
        image = header_size(sample.image)
        check_size(*image, sample.image)
        if not sample.seg_label.is_file():
            missing.append(sample)
            continue
        size = header_size(sample.seg_label)
        if size not in (image, upright_size(image, orientation(sample.image))):
            wrong.append((sample, size, image))
        palette += [sample] if header_mode(sample.seg_label) == "P" else []
    if missing and protocol == "ours":
        raise UserError(f"{len(missing)} segmentation label(s) are missing, e.g. {missing[0].seg_label} "
                        "(--protocol tam scores them as empty masks, as TAM's code does)")
    if missing:
        notice(f"note: {len(missing)} segmentation label(s) are missing, e.g. {missing[0].seg_label}: scored as "
               "empty masks, as TAM's code does (no Obj-IoU; their nouns still set Func-IoU's threshold)")
    if wrong:
        sample, mask, image = wrong[0]
        what = (f"{len(wrong)} segmentation label(s) differ in size from their image, e.g. {sample.seg_label} is "
                f"{mask[0]}x{mask[1]} but {sample.image} is {image[0]}x{image[1]}")
        if protocol == "ours":
            raise UserError(f"{what} (--protocol tam resizes the maps to them, as TAM's code does)")
        notice(f"note: {what}: the maps are resized to the label, as TAM's code does")
    if palette:
        notice(f"note: {len(palette)} segmentation label(s) are palette PNGs, e.g. {palette[0].seg_label}: read as "
               + ("palette indices (the category ids such files store); TAM's code reads their grey levels"
                  if protocol == "ours" else
                  "grey levels, as TAM's code reads them (OpenCV); if the file stores category ids as palette "
                  "indices, use the default protocol, which reads the indices"))


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
        if not (isinstance(record, list) and len(record) >= 4 and isinstance(record[3], dict)):
            raise UserError(f"{data / 'anno.json'}: record {index} is not "
                            "[image_path, caption, seg_label_path, {category: id}, ...]")
        image, caption, seg_label, categories = record[:4]
        samples.append(Sample(f"{index:06d}-{Path(image).stem}", data / image, (str(caption),), data / seg_label,
                              {str(k): int(v) for k, v in categories.items()}, prompt))
    return samples


def _coco14(data: Path, prompt: str, protocol: str, notice: Callable[[str], None]) -> list[Sample]:
    for folder in ("image", "seg_label", "annotations"):
        if not (data / folder).is_dir():
            raise UserError(f"COCO14 layout needs {data / folder}/ (image/, seg_label/, annotations/)")
    instances = _read_json(data / "annotations" / "instances_minival2014.json", "COCO instances file")
    captions = _read_json(data / "annotations" / "captions_val2014.json", "COCO captions file")
    try:
        categories = _coco_categories(instances, protocol, notice)
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


def _coco_categories(instances: dict, protocol: str, notice: Callable[[str], None]) -> dict[str, int]:
    """The instances file's categories, or TAM's fixed table: where the file has none, and always under TAM's
    protocol (its eval.py never reads the file's)."""
    if "categories" not in instances:
        notice("note: the COCO instances file has no categories: TAM's table of COCO's 80 is used")
        return dict(TAM_COCO_CATEGORIES)
    categories = {c["name"]: int(c["id"]) for c in instances["categories"]}
    if protocol == "tam" and categories != TAM_COCO_CATEGORIES:
        notice("note: --protocol tam matches words to TAM's table of COCO's 80 categories, as its code does, "
               "not to the instances file's")
        return dict(TAM_COCO_CATEGORIES)
    return categories


def _coco_image(folder: Path, image_id: int, file_name: str) -> Path:
    """The image as TAM's export names it (`<id:012d>.jpg`), else under its COCO file name."""
    exported = folder / f"{image_id:012d}.jpg"
    return exported if exported.is_file() or not file_name else folder / file_name

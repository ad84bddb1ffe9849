"""Loading evaluation samples from the four layouts TAM's evaluation exports, built tiny in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mllm_explain.data.synth import DEFAULT_PROMPT, write_dataset
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import DEFAULT_PROMPTS, TAM_COCO_CATEGORIES, load_samples


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def label(value: int) -> np.ndarray:
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = value
    return mask


def make_anno_layout(root: Path) -> Path:
    """GranDf / OpenPSG: anno.json = [[image_path, caption, seg_label_path, {category: id}], ...]."""
    records = []
    for i, (caption, categories) in enumerate([("A dog on grass.", {"dog": 18}),
                                               ("A teddy bear and a cup.", {"teddy bear": 88, "cup": 47})]):
        write_png(root / "image" / f"{i}.jpg", np.full((16, 16, 3), 40 * i, np.uint8))
        write_png(root / "seg_label" / f"{i}.png", label(list(categories.values())[0]))
        records.append([f"image/{i}.jpg", caption, f"seg_label/{i}.png", categories])
    (root / "anno.json").write_text(json.dumps(records))
    return root


def make_coco14(root: Path) -> Path:
    """COCO14 as TAM exports it: image/<id:012d>.jpg, seg_label/<stem>.png, annotations/*.json."""
    images = [{"id": 139, "file_name": "COCO_val2014_000000000139.jpg"},
              {"id": 285, "file_name": "COCO_val2014_000000000285.jpg"}]
    categories = [{"id": 1, "name": "person", "supercategory": "person"},
                  {"id": 23, "name": "bear", "supercategory": "animal"},
                  {"id": 10, "name": "traffic light", "supercategory": "outdoor"}]
    captions = [{"image_id": 139, "id": 1, "caption": "A person in a room. "},
                {"image_id": 139, "id": 2, "caption": "Someone standing indoors."},
                {"image_id": 285, "id": 3, "caption": "A big brown bear."}]
    for image in images:
        stem = f"{image['id']:012d}"
        write_png(root / "image" / f"{stem}.jpg", np.zeros((16, 16, 3), np.uint8))
        write_png(root / "seg_label" / f"{stem}.png", label(1 if image["id"] == 139 else 23))
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_minival2014.json").write_text(
        json.dumps({"images": images, "categories": categories, "annotations": []}))
    (root / "annotations" / "captions_val2014.json").write_text(json.dumps({"images": images, "annotations": captions}))
    return root


@pytest.mark.parametrize("fmt", ["grandf", "openpsg"])
def test_anno_json_layouts(tmp_path, fmt):
    samples = load_samples(make_anno_layout(tmp_path), fmt)
    assert [s.caption for s in samples] == ["A dog on grass.", "A teddy bear and a cup."]
    assert samples[1].categories == {"teddy bear": 88, "cup": 47}
    assert samples[0].image == tmp_path / "image" / "0.jpg"
    assert samples[0].prompt == DEFAULT_PROMPTS[fmt]
    assert "two" in DEFAULT_PROMPTS["grandf"] and "three" in DEFAULT_PROMPTS["openpsg"]
    mask = samples[1].mask()
    assert mask.shape == (16, 16) and set(np.unique(mask)) == {0, 88}
    assert len({s.sample_id for s in samples}) == 2


def test_coco14_layout(tmp_path):
    samples = load_samples(make_coco14(tmp_path), "coco14")
    assert [s.image.name for s in samples] == ["000000000139.jpg", "000000000285.jpg"]
    assert samples[0].references == ("A person in a room.", "Someone standing indoors.")
    assert samples[0].categories == {"person": 1, "bear": 23, "traffic light": 10}  # one dictionary for the set
    assert samples[1].seg_label == tmp_path / "seg_label" / "000000000285.png"
    assert set(np.unique(samples[1].mask())) == {0, 23}
    assert samples[0].prompt == "Write a one-sentence caption for this image:"


def test_synthetic_layout_from_write_dataset(tmp_path):
    write_dataset(tmp_path, n=2, seed=0, split="test")
    samples = load_samples(tmp_path, "synthetic")
    assert len(samples) == 2 and samples[0].prompt == DEFAULT_PROMPT
    for sample in samples:
        present = set(np.unique(sample.mask())) - {0}
        assert present == set(sample.categories.values())


def test_prompt_override(tmp_path):
    assert load_samples(make_anno_layout(tmp_path), "grandf", prompt="Say it.")[0].prompt == "Say it."


@pytest.mark.parametrize("break_it, fragment", [
    (lambda root: (root / "anno.json").unlink(), "anno.json not found"),
    (lambda root: (root / "seg_label" / "1.png").unlink(), "missing"),
    (lambda root: (root / "anno.json").write_text("[[1, 2]]"), "record 0"),
    (lambda root: (root / "anno.json").write_text("{not json"), "not valid JSON"),
    (lambda root: write_png(root / "seg_label" / "1.png", np.zeros((16, 20), np.uint8)),
     r"1 segmentation label\(s\) differ in size .*1.png is 20x16 but .*1.jpg is 16x16"),
    (lambda root: (root / "seg_label" / "0.png").write_bytes(b"not a png"), "not an image file.*0.png"),
])
def test_broken_anno_layout_is_a_user_error(tmp_path, break_it, fragment):
    make_anno_layout(tmp_path)
    break_it(tmp_path)
    with pytest.raises(UserError, match=fragment):
        load_samples(tmp_path, "grandf")


@pytest.mark.parametrize("break_it, fragment", [
    (lambda root: (root / "annotations" / "captions_val2014.json").unlink(), "captions file not found"),
    (lambda root: (root / "seg_label" / "000000000139.png").unlink(), "missing"),
    (lambda root: (root / "image" / "000000000285.jpg").unlink(), "missing"),
])
def test_broken_coco_layout_is_a_user_error(tmp_path, break_it, fragment):
    make_coco14(tmp_path)
    break_it(tmp_path)
    with pytest.raises(UserError, match=fragment):
        load_samples(tmp_path, "coco14")


def test_missing_folder_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        load_samples(tmp_path / "nowhere", "grandf")
    with pytest.raises(UserError, match="needs"):
        load_samples(tmp_path, "coco14")
    with pytest.raises(UserError, match="unknown dataset format"):
        load_samples(tmp_path, "voc")


@pytest.mark.parametrize("mask_drawn_on", ["stored pixels", "upright image"])
def test_a_rotated_photo_and_its_mask_are_read_upright(tmp_path, mask_drawn_on):
    """A photo stored a quarter turn off with its EXIF orientation is evaluated upright, and its mask
    turned with it when it was drawn on the stored pixels (kept when drawn upright)."""
    from test_images import rotated_jpeg

    from mllm_explain.images import load_image

    upright = np.zeros((40, 60, 3), np.uint8)
    upright[:10, :20] = (255, 0, 0)  # red top-left: the object
    (tmp_path / "image").mkdir()
    rotated_jpeg(Image.fromarray(upright), tmp_path / "image" / "0.jpg")
    mask = (upright[..., 0] > 0).astype(np.uint8) * 7
    write_png(tmp_path / "seg_label" / "0.png", np.rot90(mask) if mask_drawn_on == "stored pixels" else mask)
    (tmp_path / "anno.json").write_text(json.dumps([["image/0.jpg", "A red box.", "seg_label/0.png", {"box": 7}]]))
    [sample] = load_samples(tmp_path, "grandf")
    image = np.asarray(load_image(sample.image))
    assert image.shape[:2] == sample.mask().shape == (40, 60)
    assert np.array_equal(sample.mask() == 7, image[..., 0] > 128)


# --- what TAM's code reads: read under --protocol tam, refused or noted under ours ------------------------

def test_anno_records_with_more_fields_load_with_the_first_four(tmp_path):
    make_anno_layout(tmp_path)
    records = json.loads((tmp_path / "anno.json").read_text())
    (tmp_path / "anno.json").write_text(json.dumps([record + [{"boxes": []}, "extra"] for record in records]))
    for protocol in ("ours", "tam"):
        samples = load_samples(tmp_path, "grandf", protocol=protocol)
        assert samples[1].categories == {"teddy bear": 88, "cup": 47}
        assert samples[1].caption == "A teddy bear and a cup."


def test_a_coco_file_without_categories_uses_tams_table(tmp_path):
    make_coco14(tmp_path)
    instances = tmp_path / "annotations" / "instances_minival2014.json"
    instances.write_text(json.dumps({k: v for k, v in json.loads(instances.read_text()).items() if k != "categories"}))
    notes = []
    samples = load_samples(tmp_path, "coco14", notice=notes.append)
    assert samples[0].categories == TAM_COCO_CATEGORIES and len(TAM_COCO_CATEGORIES) == 80
    assert TAM_COCO_CATEGORIES["ball"] == 37 and "sports ball" not in TAM_COCO_CATEGORIES
    assert len(notes) == 1 and notes[0].startswith("note:") and "80" in notes[0]


def test_tams_protocol_always_matches_words_to_tams_coco_table(tmp_path):
    make_coco14(tmp_path)
    assert load_samples(tmp_path, "coco14")[0].categories == {"person": 1, "bear": 23, "traffic light": 10}
    notes = []
    assert load_samples(tmp_path, "coco14", protocol="tam", notice=notes.append)[0].categories == TAM_COCO_CATEGORIES
    assert len(notes) == 1 and "TAM's table" in notes[0]


def test_a_missing_mask_is_refused_by_ours_and_empty_under_tams(tmp_path):
    make_anno_layout(tmp_path)
    (tmp_path / "seg_label" / "1.png").unlink()
    with pytest.raises(UserError, match=r"1 segmentation label\(s\) are missing.*--protocol tam"):
        load_samples(tmp_path, "grandf")
    notes = []
    samples = load_samples(tmp_path, "grandf", protocol="tam", notice=notes.append)
    assert samples[1].mask("tam") is None and samples[0].mask("tam").shape == (16, 16)
    assert len(notes) == 1 and notes[0].startswith("note: 1 segmentation label(s) are missing")


def test_a_mask_of_another_size_is_refused_by_ours_and_kept_under_tams(tmp_path):
    make_anno_layout(tmp_path)
    write_png(tmp_path / "seg_label" / "1.png", np.full((8, 20), 88, np.uint8))
    with pytest.raises(UserError, match="differ in size.*--protocol tam resizes the maps"):
        load_samples(tmp_path, "grandf")
    notes = []
    samples = load_samples(tmp_path, "grandf", protocol="tam", notice=notes.append)
    assert samples[1].mask("tam").shape == (8, 20)  # TAM resizes each map to the mask
    assert len(notes) == 1 and "maps are resized to the label" in notes[0]


def test_palette_masks_are_read_as_indices_by_ours_and_grey_by_tams(tmp_path):
    make_anno_layout(tmp_path)
    palette = Image.fromarray(label(1), mode="P")
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)  # index 1 is white: grey level 255
    palette.save(tmp_path / "seg_label" / "0.png")
    for protocol, value in (("ours", 1), ("tam", 255)):
        notes = []
        sample = load_samples(tmp_path, "grandf", protocol=protocol, notice=notes.append)[0]
        assert set(np.unique(sample.mask(protocol))) == {0, value}
        assert len(notes) == 1 and "palette" in notes[0]
    assert "indices" in notes[0] and "grey" in notes[0]

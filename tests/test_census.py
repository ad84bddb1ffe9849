"""The census: every image-text-to-text `model_type` of the installed transformers is supported or refused
with a one-line reason that names its class, so a transformers upgrade that adds a family forces a decision."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from mllm_explain.adapters import ADAPTERS, REFUSED, load_model
from mllm_explain.adapters.registry import REFUSALS
from mllm_explain.cli import main
from mllm_explain.errors import UserError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scene.png"
REFUSED_EXAMPLES = ["mllama", "blip-2"]  # classes B and D


def test_every_image_text_to_text_type_is_supported_or_refused():
    unclassified = sorted(set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES) - set(ADAPTERS) - set(REFUSED))
    assert not unclassified, (f"{len(unclassified)} image-text-to-text model types are neither in ADAPTERS nor in "
                              f"REFUSED (classify them in adapters/registry.py): {', '.join(unclassified)}")


def test_no_type_is_both_supported_and_refused():
    both = sorted(set(ADAPTERS) & set(REFUSED))
    assert not both, f"supported and refused at once: {', '.join(both)}"


def test_refusals_are_one_line_and_name_their_class():
    assert set(REFUSED) == set(REFUSALS)
    for model_type, reason in REFUSED.items():
        assert reason and reason.strip() == reason and "\n" not in reason, model_type
        assert reason == " ".join(reason.split()), model_type  # the CLI prints it as is
        assert f"(class {REFUSALS[model_type].family})" in reason, (model_type, reason)
        assert len(re.findall(r"\(class [A-F]\)", reason)) == 1, (model_type, reason)


def test_examples_are_refused_with_different_classes():
    assert len({REFUSALS[model_type].family for model_type in REFUSED_EXAMPLES}) == len(REFUSED_EXAMPLES)


@pytest.fixture(scope="module")
def refused_folders(tmp_path_factory):
    """A folder per refused example holding only a default config.json of that model type."""
    folders = {}
    for model_type in REFUSED_EXAMPLES:
        folder = tmp_path_factory.mktemp(model_type)
        AutoConfig.for_model(model_type).save_pretrained(folder)
        folders[model_type] = folder
    return folders


@pytest.mark.parametrize("model_type", REFUSED_EXAMPLES)
def test_load_model_refuses_with_the_reason(refused_folders, model_type):
    with pytest.raises(UserError) as error:
        load_model(refused_folders[model_type])
    assert f"model type {model_type!r} is not supported" in str(error.value)
    assert REFUSED[model_type] in str(error.value)


@pytest.mark.parametrize("model_type", REFUSED_EXAMPLES)
def test_cli_refuses_with_one_error_line(refused_folders, model_type, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["caption", str(EXAMPLE), "--model", str(refused_folders[model_type])])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], exit_.value.code, captured.out, captured.err)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert REFUSED[model_type] in lines[0]
    assert f"(class {REFUSALS[model_type].family})" in lines[0]


def test_the_readme_tables_are_the_registrys():
    """README's supported and refused tables are rendered from the registry, never kept by hand."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "models_table.py"), "--check", "README.md"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_every_supported_type_has_a_tiny_model_and_its_table_text():
    from tiny_models import FAMILIES

    assert set(ADAPTERS) <= set(FAMILIES), sorted(set(ADAPTERS) - set(FAMILIES))
    for adapter in set(ADAPTERS.values()):
        assert adapter.layout_text and adapter.scales_text and all(adapter.model_types.values()), adapter.__name__

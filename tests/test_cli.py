"""The command line answers bad input with one line on stderr and exit code 2, never a traceback."""

import json
import subprocess
import sys

import pytest

EXAMPLE = "examples/scene.png"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (folder / "notes.png").write_text("this is not an image")
    model = folder / "bert"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return folder


@pytest.mark.parametrize("command", ["caption", "explain"])
@pytest.mark.parametrize("name, fragment", [("missing.png", "image not found"), ("corrupt.png", "image"),
                                            ("notes.png", "not an image")])
def test_unreadable_images(bad_files, command, name, fragment):
    assert_one_line_error(run(command, str(bad_files / name)), fragment)


def test_empty_prompt():
    assert_one_line_error(run("explain", EXAMPLE, "--prompt", "  ", "--out", "/tmp/unused"), "prompt is empty")


def test_unknown_method():
    assert_one_line_error(run("explain", EXAMPLE, "--method", "nope"), "unknown method", "msea_arc")


def test_unknown_model_type(bad_files):
    assert_one_line_error(run("caption", EXAMPLE, "--model", str(bad_files / "bert")), "unsupported model type")


def test_missing_model_folder(bad_files):
    assert_one_line_error(run("caption", EXAMPLE, "--model", str(bad_files / "nothing-here")), "cannot load model")


def test_scale_the_model_cannot_take(tmp_path):
    assert_one_line_error(run("explain", EXAMPLE, "--scales", "1,3", "--out", str(tmp_path)), "scale 3")


def test_bad_scale_text():
    assert_one_line_error(run("explain", EXAMPLE, "--scales", "1,big"), "scales")


@pytest.mark.parametrize("answer", ["", "   \t"])
def test_blank_answer(tmp_path, answer):
    assert_one_line_error(run("explain", EXAMPLE, "--answer", answer, "--out", str(tmp_path)), "is empty")


def test_bad_method_option():
    assert_one_line_error(run("explain", EXAMPLE, "-o", "arc_k=many"), "arc_k")


@pytest.mark.parametrize("args, fragment", [
    (["caption", EXAMPLE, "--max-new-tokens", "0"], "'--max-new-tokens'"),
    (["explain", EXAMPLE, "--max-new-tokens", "abc"], "'--max-new-tokens'"),
    (["explain", EXAMPLE, "--bogus"], "No such option: --bogus"),
    (["explain"], "Missing argument 'image'"),
    (["nocommand"], "No such command 'nocommand'"),
    (["evaluate", "--data", ".", "--limit", "0"], "'--limit'"),
    (["evaluate"], "Missing option '--data'"),
    (["caption", "x" * 300 + ".png"], "cannot read image"),
])
def test_usage_errors_are_one_line(args, fragment):
    result = run(*args)
    assert_one_line_error(result, fragment)
    assert len(result.stderr.splitlines()) == 1, result.stderr  # nothing but the error line

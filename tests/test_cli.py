"""The command line answers bad input with one line on stderr and exit code 2, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mllm_explain.cli import main

EXAMPLE = "examples/scene.png"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


def run_here(capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """`mllm-explain ARGS` through the same entry point in this process: no interpreter start-up."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), exit_.value.code, captured.out, captured.err)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr  # the error line and nothing else
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


def test_scales_the_model_cannot_take_leaving_none(tmp_path):
    assert_one_line_error(run("explain", EXAMPLE, "--scales", "12", "--out", str(tmp_path)),
                          "none of the scales 12.0 can be used", "scale 12.0 gives", "max_vision_tokens=16384")


def test_a_small_image_is_explained_at_the_scales_the_model_takes(tmp_path, capsys):
    """A 0.75 scale of an image the processor sizes near its smallest input is skipped with one note, and the
    image is explained at scale 1."""
    from PIL import Image

    small = tmp_path / "small.png"
    Image.open(EXAMPLE).convert("RGB").resize((60, 60)).save(small)
    result = run_here(capsys, "explain", str(small), "--answer", "There is a red ring.", "--scales", "1,0.75",
                      "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "scale 0.75 skipped for this 60x60 image" in notes[0], result.stderr
    tokens = json.loads((tmp_path / "r" / "tokens.json").read_text())
    assert tokens["scales"] == [1.0] and tokens["options"]["scales"] == [1.0, 0.75]


def test_max_vision_tokens_skips_an_enlarged_scale_with_one_note(tmp_path, capsys):
    """examples/scene.png is fed as 11x12 merged patches at scale 1; 1.5x would be 16x18 = 288 tokens."""
    result = run_here(capsys, "explain", EXAMPLE, "--answer", "There is a red ring.", "--method", "msea",
                      "--scales", "1,1.5", "--max-vision-tokens", "200", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: scale 1.5 skipped for this 415x365 image: scale 1.5 gives a 504x462 px input of 288 "
                     "vision tokens, more than max_vision_tokens=200"], result.stderr
    assert json.loads((tmp_path / "r" / "tokens.json").read_text())["scales"] == [1.0]


def test_bad_scale_text():
    assert_one_line_error(run("explain", EXAMPLE, "--scales", "1,big"), "scales")


@pytest.mark.parametrize("answer", ["", "   \t"])
def test_blank_answer(tmp_path, capsys, answer):
    assert_one_line_error(run_here(capsys, "explain", EXAMPLE, "--answer", answer, "--out", str(tmp_path)), "is empty")


def test_bad_method_option():
    assert_one_line_error(run("explain", EXAMPLE, "-o", "arc_k=many"), "arc_k")


@pytest.mark.parametrize("args, fragment", [
    (["caption", EXAMPLE, "--max-new-tokens", "0"], "'--max-new-tokens'"),
    (["explain", EXAMPLE, "--max-new-tokens", "abc"], "'--max-new-tokens'"),
    (["explain", EXAMPLE, "--bogus"], "No such option: --bogus"),
    (["explain"], "give an image file or --video"),
    (["nocommand"], "No such command 'nocommand'"),
    (["evaluate", "--data", ".", "--limit", "0"], "'--limit'"),
    (["evaluate"], "Missing option '--data'"),
    (["caption", "x" * 300 + ".png"], "cannot read image"),
    (["pointing", "--input-scale", "0"], "--input-scale must be in (0, 4]"),
    (["evaluate", "--data", ".", "--cost", "cheap"], "--cost must be one of shared, separate"),
    (["quality", "--scales", "1,1.5"], "sees scales <= 1 only"),
])
def test_usage_errors_are_one_line(capsys, args, fragment):
    assert_one_line_error(run_here(capsys, *args), fragment)


def test_out_that_is_a_file_is_refused_before_any_model_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mllm_explain.adapters.load_model", lambda *_: pytest.fail("the model was loaded"))
    (tmp_path / "report").write_text("a file")
    assert_one_line_error(run_here(capsys, "explain", EXAMPLE, "--out", str(tmp_path / "report")), "is a file")
    assert_one_line_error(run_here(capsys, "explain", EXAMPLE, "--out", str(tmp_path / "report" / "sub")),
                          "cannot create the output folder")


def test_image_above_the_pixel_limit(tmp_path, capsys):
    from test_images import png_header_only

    assert_one_line_error(run_here(capsys, "explain", str(png_header_only(tmp_path / "huge.png", 20000, 20000))),
                          "more pixels than the limit")


def test_prompt_with_a_control_token(tmp_path, capsys):
    assert_one_line_error(run_here(capsys, "explain", EXAMPLE, "--prompt", "Describe <|image_pad|>",
                                   "--out", str(tmp_path)), "control token '<|image_pad|>'")


@pytest.mark.parametrize("command", [["bench"], ["data", "synth", "--n", "1"], ["train"], ["quality", "--n", "1"]])
def test_other_commands_check_out_before_working(tmp_path, capsys, command):
    (tmp_path / "a-file").write_text("x")
    out, fragment = (tmp_path, "is a folder") if command[0] == "quality" else (tmp_path / "a-file", "is a file")
    assert_one_line_error(run_here(capsys, *command, "--out", str(out)), fragment)


def test_no_command_shows_the_help(capsys):
    result = run_here(capsys)
    assert result.returncode == 2 and "Usage" in result.stdout and "explain" in result.stdout
    assert result.stderr == ""


COMMANDS_WITH_A_MODEL = [["explain", EXAMPLE], ["caption", EXAMPLE], ["evaluate", "--data", "."], ["pointing"],
                         ["quality"], ["bench"]]


@pytest.mark.parametrize("command", COMMANDS_WITH_A_MODEL, ids=lambda c: c[0])
@pytest.mark.parametrize("placement, fragment", [
    (["--dtype", "float8"], "unknown dtype 'float8'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda:99"], "cuda:99"),
])
def test_bad_device_or_dtype_is_refused_before_the_model_loads(capsys, monkeypatch, tmp_path, command, placement,
                                                                fragment):
    monkeypatch.setattr("mllm_explain.adapters.load_model", lambda *_a, **_k: pytest.fail("the model was loaded"))
    monkeypatch.chdir(tmp_path)  # nothing a command might write lands in the checkout
    args = [arg.replace(EXAMPLE, str(Path(__file__).parents[1] / EXAMPLE)) for arg in command]
    assert_one_line_error(run_here(capsys, *args, *placement), fragment)
    assert not any(tmp_path.iterdir())

"""`mllm-explain evaluate` end to end on three synthetic scenes with the bundled model, and resuming."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from typer.testing import CliRunner

from mllm_explain.cli import app, main
from mllm_explain.data.synth import DEFAULT_PROMPT, write_dataset
from mllm_explain.errors import UserError
from mllm_explain.evaluation.metrics import HIGHER_IS_BETTER
from mllm_explain.evaluation.runner import ROW_SETTINGS

METHODS = ["logit_lens", "tam"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=3, seed=0, split="test")
    return folder


def evaluate(data, out, *extra: str):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--format", "synthetic",
                                      "--methods", ",".join(METHODS), "--out", str(out), *extra])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def rows(out):
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_evaluate_writes_the_summary_table_and_plots(scenes, tmp_path):
    result = evaluate(scenes, tmp_path, "--limit", "3", "--steps", "4")
    assert "| method |" in result.stdout and "| tam |" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"methods", "n_samples", "protocol", "model", "data", "cost", "changed_options"}
    assert summary["protocol"] == "ours"
    assert summary["changed_options"] == {method: {} for method in METHODS}
    assert summary["n_samples"] == 3
    assert list(summary["methods"]) == ["generation", *METHODS, "random"]
    for values in summary["methods"].values():
        assert set(values) == set(HIGHER_IS_BETTER)
    for method in METHODS:
        values = summary["methods"][method]
        for key in ("func_iou", "seconds_per_caption", "peak_mem_mb"):
            assert math.isfinite(values[key]), (method, key)
        assert 0 <= values["func_iou"] <= 1
        assert values["obj_iou"] is None or 0 <= values["obj_iou"] <= 1
    generation = summary["methods"]["generation"]
    assert generation["seconds_per_caption"] > 0 and generation["obj_iou"] is None
    random_row = summary["methods"]["random"]
    assert random_row["seconds_per_caption"] is None and math.isfinite(random_row["func_iou"])
    faithful = [r for r in rows(tmp_path) if r["method"] == "random" and r["faithfulness"]]
    if faithful:  # curves exist only for object nouns the caption names and the mask holds
        assert all(0 <= random_row[k] <= 1 for k in ("insertion_auc", "deletion_auc"))
        assert len(faithful[0]["faithfulness"][0]["deletion"]) == 5
    csv_lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert csv_lines[0].split(",") == ["method", *HIGHER_IS_BETTER] and len(csv_lines) == 5
    classes = json.loads((tmp_path / "by_word_class.json").read_text())
    assert {"function", "colour"} <= set(classes["tam"])
    for name in ("metrics.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_an_interrupted_run_resumes_without_losing_or_repeating_a_sample(scenes, tmp_path):
    evaluate(scenes, tmp_path, "--limit", "2", "--no-faithfulness")
    first = rows(tmp_path)
    assert Counter(r["method"] for r in first) == {"generation": 2, "logit_lens": 2, "tam": 2}
    # interrupted while writing sample 2's last row: drop it and leave half a line behind
    lines = (tmp_path / "samples.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "samples.jsonl").write_text("".join(lines[:-1]) + lines[-1][:25])
    evaluate(scenes, tmp_path, "--limit", "3", "--no-faithfulness")
    final = rows(tmp_path)
    pairs = Counter((r["sample_id"], r["method"]) for r in final)
    assert max(pairs.values()) == 1
    assert Counter(method for _, method in pairs) == {"generation": 3, "logit_lens": 3, "tam": 3}
    answers = {r["sample_id"]: r["answer"] for r in first if r["method"] == "generation"}
    assert all(r["answer"] == answers.get(r["sample_id"], r["answer"]) for r in final if r["method"] == "generation")
    assert json.loads((tmp_path / "summary.json").read_text())["n_samples"] == 3


def test_bad_input_is_a_user_error(scenes, tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        evaluate(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(UserError, match="unknown method"):
        evaluate(scenes, tmp_path / "out", "--methods", "nope")
    with pytest.raises(UserError, match="--answer"):
        evaluate(scenes, tmp_path / "out", "--answer", "maybe", "--limit", "1")


def cli(capsys, *args: str) -> tuple[int, str]:
    """`mllm-explain ARGS` in this process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return exit_.value.code, capsys.readouterr().err


def test_resuming_under_other_settings_is_refused_unless_fresh(scenes, tmp_path, capsys):
    quick = ["evaluate", "--data", str(scenes), "--methods", "logit_lens", "--no-faithfulness", "--out", str(tmp_path)]
    assert cli(capsys, *quick, "--limit", "1")[0] == 0
    recorded = json.loads((tmp_path / "settings.json").read_text())
    assert recorded["prompt"] == DEFAULT_PROMPT and recorded["methods"] == ["logit_lens"] and recorded["limit"] == 1
    assert set(ROW_SETTINGS) <= set(recorded) and recorded["data"] == str(scenes.resolve())
    before = (tmp_path / "samples.jsonl").read_text()
    for change, fragment in [(["--prompt", "Describe it."], "prompt"), (["-o", "normalise=joint"], "options"),
                             (["--answer", "reference"], "answer"), (["--faithfulness"], "faithfulness")]:
        code, stderr = cli(capsys, *quick, "--limit", "2", *change)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), stderr
        assert "other settings" in lines[0] and fragment in lines[0] and "--fresh" in lines[0]
        assert (tmp_path / "samples.jsonl").read_text() == before  # nothing added, nothing lost
    assert cli(capsys, *quick, "--limit", "1", "--prompt", "Describe it.", "--fresh")[0] == 0
    assert {r["prompt"] for r in rows(tmp_path) if r["method"] == "generation"} == {"Describe it."}
    assert len(rows(tmp_path)) == 2


def test_resuming_after_a_method_default_changed_is_refused(scenes, tmp_path, capsys):
    quick = ["evaluate", "--data", str(scenes), "--methods", "logit_lens", "--no-faithfulness", "--out", str(tmp_path)]
    assert cli(capsys, *quick, "--limit", "1")[0] == 0
    recorded = json.loads((tmp_path / "settings.json").read_text())
    assert recorded["options"]["logit_lens"]["filter"] is False  # defaults are recorded, not only -o options
    recorded["options"]["logit_lens"]["filter"] = True  # as an earlier release with another default would have
    (tmp_path / "settings.json").write_text(json.dumps(recorded))
    code, stderr = cli(capsys, *quick, "--limit", "2")
    assert code == 2 and "options" in stderr and "--fresh" in stderr
    assert cli(capsys, *quick, "--limit", "2", "--methods", "logit_lens,tam")[0] == 2  # still refused with more methods
    recorded["options"]["logit_lens"]["filter"] = False
    (tmp_path / "settings.json").write_text(json.dumps(recorded))
    assert cli(capsys, *quick[:4], "logit_lens,tam", *quick[5:], "--limit", "1")[0] == 0  # a new method may join


def test_results_without_a_settings_record_are_not_resumed(scenes, tmp_path, capsys):
    (tmp_path / "samples.jsonl").write_text('{"sample_id": "x", "method": "generation"}\n')
    code, stderr = cli(capsys, "evaluate", "--data", str(scenes), "--out", str(tmp_path))
    assert code == 2 and stderr.startswith("error:") and "no settings.json" in stderr


def test_a_method_prefixed_option_changes_that_method_alone(scenes, tmp_path):
    """`-o tam.scales=1,1.5` makes `tam` two-scale and leaves `logit_lens` alone; the table's label says so, and no
    note is needed.  A plain option that changes several methods' defaults is named in one `note:` line."""
    result = evaluate(scenes, tmp_path / "prefixed", "--limit", "1", "--no-faithfulness", "-o", "tam.scales=1,1.5")
    assert "note:" not in result.stderr
    assert "| tam (scales=1,1.5) |" in result.stdout and "| logit_lens |" in result.stdout
    summary = json.loads((tmp_path / "prefixed" / "summary.json").read_text())
    assert summary["changed_options"] == {"logit_lens": {}, "tam": {"scales": [1.0, 1.5]}}
    by_method = {r["method"]: r for r in rows(tmp_path / "prefixed") if r["method"] in METHODS}
    assert by_method["tam"]["scales"] == [1.0, 1.5] and by_method["logit_lens"]["scales"] == [1.0]
    assert by_method["tam"]["vision_tokens"][1] > by_method["tam"]["vision_tokens"][0]  # 1.5x: more tokens
    plain = evaluate(scenes, tmp_path / "plain", "--limit", "1", "--no-faithfulness", "-o", "scales=1,1.5")
    notes = [line for line in plain.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: scales=1,1.5 changes logit_lens, tam; to change one method, prefix it: -o tam.scales=..."]


@pytest.mark.parametrize("option, fragment", [("msea.scales=1,1.5", "'msea' is not a method of this run"),
                                              ("tam.no_such=1", "KEY one of"), ("tam.scales=a", "is not a")])
def test_a_bad_prefixed_option_is_one_line(scenes, tmp_path, capsys, option, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--data", str(scenes), "--methods", ",".join(METHODS), "--out", str(tmp_path), "-o", option])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and fragment in err and err.count("\n") == 1

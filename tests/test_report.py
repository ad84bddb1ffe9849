"""The HTML report and word PNGs, from a synthetic Explanation (no model): files, self-containment,
escaping of untrusted text, and (in headless Chromium) the token-click interaction."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mllm_explain.explanation import Explanation
from mllm_explain.report import MAX_WORD_SIDE, save, write_report
from mllm_explain.report.images import heat_colours, safe_name

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKENS = ["A", " red", " <b>star</b>", "."]
PROMPT_TOKENS = ["Describe", " this", "<script>alert(1)</script>"]
EVIL_CANDIDATE = "</script><script>alert(2)</script>"


def make_explanation(height: int = 40, width: int = 60, tokens: list[str] = TOKENS,
                     grounding: list[float] | None = None) -> Explanation:
    """Four answer tokens (or `tokens`), each with its own blob map on an 8x12 grid, relevances only
    for earlier context tokens."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    n, p = len(tokens), len(PROMPT_TOKENS)
    ys, xs = np.mgrid[0:8, 0:12] + 0.5
    grid_maps = np.stack([np.exp(-(((xs - 12 * (t + 0.5) / n) / 1.5) ** 2 + ((ys - 4) / 2) ** 2))
                          for t in range(n)]).astype(np.float32)
    relevance = np.full((n, p + n), np.nan)
    for t in range(n):
        relevance[t, : p + t] = rng.random(p + t) + 0.1
    candidates = [[(tokens[t], 0.6 - 0.1 * t), (f" cand{t}", 0.2), (EVIL_CANDIDATE, 0.05)] for t in range(n)]
    return Explanation(
        method="msea+arc", options={"layers": "all", "note": "<i>opt</i>"},
        prompt="Describe this<script>alert(1)</script>",
        images=[image], tokens=list(tokens), token_ids=list(range(n)), image_grid_maps=[grid_maps],
        context_tokens=PROMPT_TOKENS + tokens, relevance=relevance, candidates=candidates, model="synthetic/model",
        grounding=None if grounding is None else np.asarray(grounding),
    )


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    return make_explanation()


@pytest.fixture(scope="module")
def report(explanation: Explanation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(explanation, tmp_path_factory.mktemp("report"))


def page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert match, "JSON data block missing"
    return json.loads(match.group(1))


def test_files(report: Path, explanation: Explanation) -> None:
    assert report.name == "report.html" and report.is_file()
    pngs = sorted((report.parent / "words").glob("*.png"))
    assert len(pngs) == len(explanation.words) == 4
    assert [p.name for p in pngs] == ["000_A.png", "001_red.png", "002_bstarb.png", "003_word.png"]
    with Image.open(pngs[0]) as png:
        assert png.size == explanation.image.size


def test_word_png_is_half_blend(report: Path, explanation: Explanation) -> None:
    with Image.open(report.parent / "words" / "001_red.png") as png:
        got = np.asarray(png.convert("RGB"), dtype=np.float64)
    expected = 0.5 * np.asarray(explanation.image, dtype=np.float64) + 0.5 * heat_colours(explanation.word_map(1))
    assert np.abs(got - expected).max() <= 1.0


def test_jet_colours() -> None:
    assert heat_colours(np.array([[1.0]]))[0, 0].tolist() == [128, 0, 0]  # hot: dark red
    assert heat_colours(np.array([[0.0]]))[0, 0].tolist() == [0, 0, 128]  # cold: dark blue
    assert heat_colours(np.array([[np.nan]]))[0, 0].tolist() == [0, 0, 128]


def test_safe_name() -> None:
    assert safe_name("<b>star</b>") == "bstarb"
    assert safe_name("../..") == "word"
    assert safe_name("") == "word"


def test_self_contained(report: Path, explanation: Explanation) -> None:
    html = report.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "<link" not in html
    assert all(src.startswith("data:") for src in re.findall(r'\bsrc="([^"]*)"', html))
    assert html.count("data:image/") == 1 + len(explanation.tokens)  # the image once, one map per token


def test_untrusted_text_escaped(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "<script>alert(" not in html
    assert "<b>star</b>" not in html and "<i>opt</i>" not in html
    assert "&lt;b&gt;star&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\\u003cb\\u003estar\\u003c/b\\u003e" in html  # the JSON block's form
    assert len(re.findall(r"</script>", html)) == 2  # only the page's own two script blocks close


def test_page_leads_with_the_image_and_folds_the_settings(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    places = [html.index(mark) for mark in ('id="image"', 'class="token', '<details class="settings"',
                                            '<table class="settings">')]
    assert places == sorted(places)  # the settings table sits in the fold
    assert re.search(r'<details class="settings" id="settings">\s*<summary>Settings: msea\+arc on synthetic/model, '
                     r'2 options</summary>', html)
    assert "<th>layers</th><td>all</td>" in html and "<details open" not in html


def test_embedded_maps(report: Path, explanation: Explanation) -> None:
    data = page_data(report.read_text(encoding="utf-8"))
    maps = [token["heatmaps"][0] for token in data["tokens"]]
    assert len(maps) == len(explanation.tokens)
    assert all(m.startswith("data:image/") for m in maps) and len(set(maps)) == len(maps)
    assert data["tokens"][2]["text"] == " <b>star</b>"
    assert data["tokens"][0]["tint"][3:] == [None] * 4  # answer tokens are no context of the first
    assert data["tokens"][3]["candidates"][-1] == {"text": EVIL_CANDIDATE, "percent": 5.0}


def test_embedded_images_downscaled(tmp_path: Path) -> None:
    report = write_report(make_explanation(height=300, width=1200), tmp_path)
    html = report.read_text(encoding="utf-8")
    sizes = []
    for payload in re.findall(r"data:image/\w+;base64,([A-Za-z0-9+/=]+)", html):
        with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
            sizes.append(image.size)
    assert sizes and all(size == (512, 128) for size in sizes)


def test_explanation_save(tmp_path: Path) -> None:
    path = save(make_explanation(), tmp_path / "out")
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    assert len(list((tmp_path / "out" / "words").glob("*.png"))) == 4


def test_saved_maps_are_the_grid_and_do_not_grow_with_the_image(tmp_path: Path) -> None:
    small, large = make_explanation(40, 60), make_explanation(400, 600)
    save(small, tmp_path / "small")
    save(large, tmp_path / "large")
    arrays = np.load(tmp_path / "large" / "maps.npz")
    assert sorted(arrays.files) == ["grid_maps", "image_box", "image_size", "relevance"]
    assert arrays["grid_maps"].shape == (4, 8, 12) and arrays["image_size"].tolist() == [600, 400]
    sizes = [(tmp_path / name / "maps.npz").stat().st_size for name in ("small", "large")]
    assert abs(sizes[0] - sizes[1]) < 64, sizes
    maps = large.maps_at()
    assert maps.shape == (4, 400, 600) and np.array_equal(maps, large.image_maps)
    assert np.allclose(large.maps_at((8, 12)), large.grid_maps, atol=1e-6)  # the grid's own size: unchanged


def test_word_pngs_are_capped(tmp_path: Path) -> None:
    write_report(make_explanation(height=300, width=2400), tmp_path)
    with Image.open(tmp_path / "words" / "000_A.png") as png:
        assert png.size == (MAX_WORD_SIDE, 128)


def test_a_failed_save_keeps_the_earlier_report_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_explanation()
    save(first, tmp_path)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "words" / "009_stale.png").write_bytes(b"from an older answer")

    def broken(*_args):
        raise RuntimeError("disk full")

    monkeypatch.setattr("mllm_explain.report.render_html", broken)
    with pytest.raises(RuntimeError):
        save(make_explanation(40, 61), tmp_path)
    after = {p.relative_to(tmp_path): p for p in tmp_path.rglob("*") if p.is_file()}
    assert not [p for p in after if ".tmp" in p.name]  # no temporary file left behind
    assert (tmp_path / "report.html").read_bytes() == before[Path("report.html")]
    monkeypatch.undo()
    save(first, tmp_path)
    assert not (tmp_path / "words" / "009_stale.png").exists()  # a complete save removes stale word PNGs


def test_explanation_does_not_import_the_report() -> None:
    code = "import sys, mllm_explain.explanation; print(any(m.startswith('mllm_explain.report') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "False", result.stderr


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium missing at /usr/bin/chromium; CI must install it")
        pytest.skip("Chromium not installed at /usr/bin/chromium: apt-get install chromium")


def test_browser_interaction(report: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    def tint(page, j: int) -> str:
        return page.eval_on_selector(f'[data-context="{j}"]', "el => el.style.backgroundColor")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors, dialogs, remote = [], [], []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: None if request.url.startswith(("file:", "data:"))
                    else remote.append(request.url))
            page.goto(report.as_uri())

            heatmap = page.locator("#heatmap")
            assert heatmap.get_attribute("data-shown-token") == "0"  # first token selected on load
            assert "selected" in page.locator('.token[data-token="0"]').get_attribute("class")
            assert tint(page, 0) != "" and tint(page, 3) == ""  # prompt is context of token 0, the answer not yet

            page.click('.token[data-token="1"]')
            src1, shown1 = heatmap.get_attribute("src"), heatmap.get_attribute("data-shown-token")
            candidates1 = page.inner_text("#candidates")
            page.click('.token[data-token="3"]')
            src3, shown3 = heatmap.get_attribute("src"), heatmap.get_attribute("data-shown-token")
            candidates3 = page.inner_text("#candidates")

            assert (shown1, shown3) == ("1", "3")
            assert src1 != src3 and src3.startswith("data:image/")
            assert candidates1 != candidates3 and "cand3" in candidates3 and EVIL_CANDIDATE in candidates3
            assert tint(page, 3).startswith("rgba(") and tint(page, 5) != ""  # earlier answer tokens tinted
            assert tint(page, 6) == ""  # the selected token is not its own context
            assert "selected" in page.locator('.token[data-token="3"]').get_attribute("class")
            assert page.inner_text(".token >> nth=2") == " <b>star</b>"

            page.keyboard.press("ArrowLeft")
            assert heatmap.get_attribute("data-shown-token") == "2"
            assert page.locator(".ungrounded").count() == 0 and page.locator("#legend").count() == 0  # no scores
            page.screenshot(path="/tmp/report_screenshot.png", full_page=True)
            assert not errors and not dialogs and not remote
        finally:
            browser.close()


MARKED_TOKENS = ["A", " red", " star", " and", " a", " moon", "."]
MARKED_GROUNDING = [0.9, 0.1, 0.95, 0.05, 0.9, 0.1, 0.9]  # low: ' red' (adjective), ' and', ' moon' (a noun)


def test_ungrounded_nouns_in_tokens_json(tmp_path: Path) -> None:
    explanation = make_explanation(tokens=MARKED_TOKENS, grounding=MARKED_GROUNDING)
    save(explanation, tmp_path)
    saved = json.loads((tmp_path / "tokens.json").read_text())
    assert saved["ungrounded_words"] == [5] and explanation.words[5] == "moon"
    assert [t["grounding"] for t in saved["tokens"]] == pytest.approx(MARKED_GROUNDING)
    assert 0 < saved["grounding_threshold"] < 1


def test_browser_marks_ungrounded_nouns(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    report = write_report(make_explanation(tokens=MARKED_TOKENS, grounding=MARKED_GROUNDING), tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(report.as_uri())
            marked = page.locator(".token.ungrounded")
            assert marked.count() == 1 and marked.inner_text() == " moon"
            title = marked.get_attribute("title")
            assert "0.10" in title and "may not be in the image" in title
            style = marked.evaluate("el => getComputedStyle(el).textDecorationStyle")
            assert style == "wavy"  # a distinct style, not only a class name
            assert page.locator(".token >> nth=1").get_attribute("class") == "token"  # a low adjective is not marked
            assert page.locator("#legend").is_visible() and "wavy red underline" in page.inner_text("#legend")
            page.click(".token.ungrounded")  # the marked word stays a clickable token
            assert page.locator("#heatmap").get_attribute("data-shown-token") == "5"
        finally:
            browser.close()

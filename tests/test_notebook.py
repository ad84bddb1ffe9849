"""Explanations in a notebook and a terminal: `_repr_html_` (in headless Chromium), `show`, `plot`, `compare`,
`phrase_map` and `repr`, on the bundled model with a given answer."""

from __future__ import annotations

import html
import io
import re
import sys
import types
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.figure import Figure
from rich.console import Console

from mllm_explain import UserError, compare, explain
from mllm_explain.notebook import in_notebook, notebook_html

SCENE, PROMPT, ANSWER = "examples/scene.png", "Describe this image.", "There is a red circle."


@pytest.fixture(scope="module")
def tam(bundled):
    return explain(bundled, SCENE, PROMPT, answer=ANSWER, method="tam")


@pytest.fixture(scope="module")
def msea(bundled):
    return explain(bundled, SCENE, PROMPT, answer=ANSWER, method="msea_arc")


def srcdoc(fragment: str) -> str:
    """The page an iframe fragment carries."""
    match = re.fullmatch(r'<iframe [^>]*srcdoc="([^"]*)"[^>]*></iframe>', fragment, re.S)
    assert match, fragment[:200]
    return html.unescape(match.group(1))


def test_repr_html_is_self_contained(tam):
    fragment = tam._repr_html_()
    assert fragment.startswith("<iframe") and 'sandbox="allow-scripts"' in fragment
    assert re.search(r"height:\d+px", fragment)
    assert " src=" not in fragment.split("srcdoc=")[0]  # the iframe loads nothing: the page is inline
    assert " id=" not in fragment.split("srcdoc=")[0]  # no id of its own in the notebook's page
    assert "height:300px" in notebook_html(tam, height=300)
    page = srcdoc(fragment)
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert all(src.startswith("data:") for src in re.findall(r'\bsrc="([^"]*)"', page))
    assert 'id="heatmap"' in page and 'class="token' in page


def test_report_leads_with_the_image_and_folds_the_settings(tam):
    page = srcdoc(tam._repr_html_())
    assert page.index('id="image"') < page.index('class="token') < page.index('<details class="settings"')
    assert re.search(r'<details class="settings" id="settings">\s*<summary>Settings: tam on ', page)
    assert "<details open" not in page


def frames(page, count: int):
    return [page.frame_locator("iframe.mllm-explain").nth(k) for k in range(count)]


def test_repr_html_viewer_works_and_two_do_not_clash(tam, msea):
    from test_report import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    notebook = f"<!doctype html><html><body><div>{tam._repr_html_()}</div><div>{msea._repr_html_()}</div></body></html>"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors, remote = [], []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: None if request.url.startswith(("data:", "about:"))
                    else remote.append(request.url))
            page.set_content(notebook)
            first, second = frames(page, 2)
            first.locator('.token[data-token="0"].selected').wait_for()
            second.locator('.token[data-token="0"].selected').wait_for()
            heat1, heat2 = first.locator("#heatmap"), second.locator("#heatmap")
            src0, other0 = heat1.get_attribute("src"), heat2.get_attribute("src")

            first.locator('.token[data-token="4"]').click()  # "circle" in the first viewer
            assert heat1.get_attribute("data-shown-token") == "4" and heat1.get_attribute("src") != src0
            assert heat2.get_attribute("data-shown-token") == "0" and heat2.get_attribute("src") == other0

            page.keyboard.press("ArrowLeft")  # the keys act on the viewer that has focus
            assert heat1.get_attribute("data-shown-token") == "3"
            assert heat2.get_attribute("data-shown-token") == "0"

            second.locator('.token[data-token="2"]').click()
            page.keyboard.press("ArrowRight")
            assert heat2.get_attribute("data-shown-token") == "3"
            assert heat1.get_attribute("data-shown-token") == "3"
            assert "selected" in second.locator('.token[data-token="3"]').get_attribute("class")

            box = page.locator("iframe.mllm-explain").first.bounding_box()
            image = first.locator("#image").bounding_box()
            assert image["y"] + image["height"] < box["y"] + box["height"]  # the image fits the cell
            assert second.locator("#settings").get_attribute("open") is None  # the settings stay folded
            page.screenshot(path="/tmp/notebook_screenshot.png", full_page=True)
            assert not errors and not remote, (errors, remote)
        finally:
            browser.close()


def test_plot_is_a_figure_of_the_words_map(tam):
    circle, red = tam.plot("circle"), tam.plot(3, alpha=0.3, cmap="viridis")
    assert isinstance(circle, Figure) and len(circle.axes) == 1
    picture, heat = circle.axes[0].images
    assert picture.get_array().shape == (tam.image.height, tam.image.width, 3)
    assert heat.get_array().shape == (tam.image.height, tam.image.width)
    np.testing.assert_allclose(heat.get_array(), tam.word_map(4))
    assert not np.allclose(red.axes[0].images[1].get_array(), heat.get_array())
    assert red.axes[0].images[1].get_alpha() == 0.3 and red.axes[0].images[1].get_cmap().name == "viridis"
    assert "pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()


def test_plot_on_given_axes_and_bad_words(tam):
    figure = Figure()
    ax = figure.add_subplot()
    assert tam.plot("Red Circle", ax=ax) is figure
    np.testing.assert_allclose(ax.images[1].get_array(), tam.phrase_map(3, 4))
    with pytest.raises(UserError, match="'square' is not in the answer"):
        tam.plot("square")
    with pytest.raises(UserError, match="word 9 is not in the answer"):
        tam.plot(9)
    with pytest.raises(UserError, match="image 1 is not one"):
        tam.plot(0, image=1)


def test_compare_lays_out_one_axis_per_method(tam, msea):
    figure = compare({"tam": tam, "msea_arc": msea}, "circle")
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [ax.get_title() for ax in figure.axes] == ["tam", "msea_arc"]
    np.testing.assert_allclose(figure.axes[0].images[1].get_array(), tam.word_map(4))
    np.testing.assert_allclose(figure.axes[1].images[1].get_array(), msea.word_map(4))


def test_compare_refuses_different_answers(bundled, tam):
    other = explain(bundled, SCENE, PROMPT, answer="There is a blue square.", method="tam")
    with pytest.raises(UserError, match="^compare needs explanations of one answer") as info:
        compare({"tam": tam, "other": other}, 1)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="at least one"):
        compare({}, 0)


def test_phrase_map_is_the_max_of_its_words_maps(tam):
    phrase = tam.phrase_map(2, 4)
    assert phrase.shape == (tam.image.height, tam.image.width)
    np.testing.assert_array_equal(phrase, np.maximum.reduce([tam.word_map(w) for w in (2, 3, 4)]))
    small = tam.phrase_map(3, 4, size=(20, 30))
    np.testing.assert_array_equal(small, np.maximum(tam.word_map(3, (20, 30)), tam.word_map(4, (20, 30))))
    np.testing.assert_array_equal(tam.phrase_map(1, 1), tam.word_map(1))
    for first, last in ((3, 2), (-1, 2), (0, 6)):
        with pytest.raises(IndexError):
            tam.phrase_map(first, last)


def test_repr_is_one_short_line(tam, msea):
    assert repr(tam) == "Explanation(method='tam', answer='There is a red circle.', grid=11x12, scales=(1.0,))"
    assert "\n" not in repr(msea) and len(repr(msea)) < 120 and "msea_arc" in repr(msea)


def test_show_in_a_terminal_prints_a_summary(tam, capsys):
    console = Console(file=io.StringIO(), width=120, color_system=None)
    tam.show(console)
    text = console.file.getvalue()
    assert text.startswith("mllm-explain tam") and "grid 11x12" in text and "scales 1" in text
    assert "answer: There is a red circle(?)." in text  # the ungrounded noun flagged
    rows = [line.split() for line in text.splitlines() if re.match(r"\s*\d+\s", line)]
    assert [row[1] for row in rows] == tam.words
    assert all(re.fullmatch(r"\(\d+,", row[2]) for row in rows)
    assert not capsys.readouterr().out  # all of it went to the given console
    tam.show()  # the default console: stdout
    assert "answer: There is a red circle" in capsys.readouterr().out
    unscored = Console(file=io.StringIO(), width=120, color_system=None)
    replace(tam, grounding=None).show(unscored)
    text = unscored.file.getvalue()
    assert "answer: There is a red circle." in text and "(?)" not in text and "grounding" not in text


def test_show_in_a_notebook_displays_the_viewer(tam, monkeypatch):
    shown = []
    ipython = types.ModuleType("IPython")
    display = types.ModuleType("IPython.display")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())
    display.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert in_notebook()
    tam.show()
    assert shown == [tam]
    ipython.get_ipython = lambda: types.SimpleNamespace()  # a terminal IPython: no kernel
    assert not in_notebook()


def test_nothing_imports_ipython_or_pyplot():
    import subprocess

    code = ("import sys, mllm_explain.notebook, mllm_explain.explanation; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'IPython' or m == 'matplotlib.pyplot'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "[]", result.stderr


def test_several_images(bundled):
    from PIL import Image

    first = Image.open(SCENE).convert("RGB")
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((200, 150))
    both = explain(bundled, [first, second], "Describe the second image.", answer=ANSWER, method="tam")
    assert repr(both).endswith(", images=2)")
    heat = both.plot("circle", image=1).axes[0].images[1].get_array()
    assert heat.shape == (150, 200)
    np.testing.assert_allclose(heat, both.for_image(1).word_map(4))
    np.testing.assert_array_equal(both.phrase_map(3, 4, image=1), both.for_image(1).phrase_map(3, 4))
    console = Console(file=io.StringIO(), width=120, color_system=None)
    both.show(console)
    text = console.file.getvalue()
    assert "images 2" in text and re.search(r"circle\s+[12] \(\d+%\)", text)
    assert srcdoc(both._repr_html_()).count('class="image-panel"') == 2

"""`mllm-explain app` on the bundled model: the endpoints through Starlette's TestClient (errors are messages, no
path from the request is ever read), and the page in headless Chromium against `mllm-explain app` itself, started as
a user starts it (upload, explain with two methods, the map of a clicked word and of a selected run of words equal
`explain`'s, the viewer's map of a clicked token, the reverse query, the grounding flags, a corrupt upload and an
empty prompt as messages with the server still answering)."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from urllib.request import urlopen

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from starlette.testclient import TestClient  # noqa: E402
from test_report import CHROMIUM, CHROMIUM_ARGS, require_chromium  # noqa: E402

from mllm_explain.adapters import load_model  # noqa: E402
from mllm_explain.app import create_app, phrase_png, region_query  # noqa: E402
from mllm_explain.pipeline import explain  # noqa: E402
from mllm_explain.report.html import page_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "examples" / "scene.png"
PROMPT = "Describe this image."
ANSWER = "A red star and a blue circle."
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's package in subprocesses


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, max_new_tokens=12)) as client:
        yield client


def post(client, image: bytes | None = None, prompt: str = PROMPT, answer: str = ANSWER, methods=("tam",),
         fields: dict | None = None):
    files = {"image": ("scene.png", image, "image/png")} if image is not None else None
    return client.post("/explain", files=files, data={"prompt": prompt, "answer": answer, "methods": list(methods),
                                                      **(fields or {})})


def test_explain_endpoint_and_downloads(client, model):
    response = post(client, SCENE.read_bytes(), methods=("tam", "msea_arc"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert [m["name"] for m in result["methods"]] == ["tam", "msea_arc"]
    expected = explain(model, SCENE, PROMPT, answer=ANSWER, method="tam")
    assert result["answer"] == expected.answer and result["words"] == expected.words
    tam = result["methods"][0]
    maps = np.load(io.BytesIO(client.get(tam["maps"]).content))
    np.testing.assert_allclose(maps["grid_maps"], expected.grid_maps, atol=1e-5)
    tokens = client.get(tam["tokens"]).json()
    assert [token["text"] for token in tokens["tokens"]] == expected.tokens and tokens["method"] == expected.method
    assert client.get(tam["maps"]).headers["content-disposition"] == 'attachment; filename="tam-maps.npz"'
    assert "<iframe" not in client.get(tam["report"]).text and client.get(result["image"]).status_code == 200
    star = expected.words.index("star")
    shown = client.get(tam["map"], params={"first": star - 1, "last": star})
    assert shown.headers["content-type"] == "image/png"
    np.testing.assert_allclose(decode_png(shown.content), decode_png(phrase_png(expected, star - 1, star)), atol=2)
    assert tam["ungrounded"] == expected.ungrounded_words and len(tam["grounding"]) == len(expected.words)
    rows = client.get(tam["region"], params={"x": 0.3, "y": 0.6}).json()["tokens"]
    assert rows == region_query(expected, 0.3, 0.6)
    assert [row["value"] for row in rows] == sorted((row["value"] for row in rows), reverse=True)
    box = client.get(tam["region"], params={"x": 0.5, "y": 0.5, "x2": 0.25, "y2": 0.25}).json()["tokens"]
    assert box == region_query(expected, 0.25, 0.25, 0.5, 0.5) and box != rows


@pytest.mark.parametrize("case, status, message", [
    ("corrupt", 400, "not an image file"),
    ("empty file", 400, "empty"),
    ("path", 400, "choose an image file"),
    ("no prompt", 400, "the prompt is empty"),
    ("no method", 400, "at least one method"),
    ("unknown method", 400, "unknown method"),
    ("too many pixels", 400, "more than the limit"),
])
def test_bad_input_is_a_message(client, case, status, message, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    big = io.BytesIO()
    Image.new("1", (9000, 8000)).save(big, format="PNG")  # 72 megapixels, a few kB: refused from its header
    arguments = {
        "corrupt": {"image": b"\x89PNG\r\n\x1a\n not really"}, "empty file": {"image": b""},
        "path": {"image": None, "fields": {"image": str(secret)}}, "no prompt": {"image": SCENE.read_bytes(),
                                                                              "prompt": "  "},
        "no method": {"image": SCENE.read_bytes(), "methods": ()},
        "unknown method": {"image": SCENE.read_bytes(), "methods": ("nope",)},
        "too many pixels": {"image": big.getvalue()},
    }[case]
    response = post(client, **arguments)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert str(secret) not in response.text
    assert post(client, SCENE.read_bytes()).status_code == 200  # the server goes on


def test_unknown_results_regions_and_runs_are_messages(client):
    assert client.get("/result/nope/tam/maps.npz").status_code == 404
    assert "no such result" in client.get("/result/nope/tam/region?x=0&y=0").json()["error"]
    point = post(client, SCENE.read_bytes()).json()["methods"][0]["region"]
    assert "outside the image" in client.get(point, params={"x": 1.5, "y": 0}).json()["error"]
    assert "outside the image" in client.get(point, params={"x": 0, "y": 0, "x2": 0.5, "y2": -1}).json()["error"]
    assert "numbers" in client.get(point, params={"x": "left"}).json()["error"]
    phrase = point.replace("/region", "/map.png")
    assert "not a run" in client.get(phrase, params={"first": 2, "last": 1}).json()["error"]
    assert "not a run" in client.get(phrase, params={"first": 0, "last": 99}).json()["error"]
    assert "word indices" in client.get(phrase, params={"first": "a"}).json()["error"]
    assert client.post("/explain", headers={"content-length": str(2**40)}).status_code == 413


def test_cli_without_the_extra_says_how_to_install(tmp_path):
    """One `error:` line and exit code 2; and the core package (command line, report) never imports starlette."""
    code = ("import sys, mllm_explain, mllm_explain.cli, mllm_explain.images, mllm_explain.report\n"
            "assert not {'starlette', 'uvicorn'} & set(sys.modules), sorted(sys.modules)\n"
            "sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
            "from mllm_explain.cli import main; main(['app'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env=ENV)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: the app needs starlette, uvicorn: pip install 'mllm-explain[app]'"


def test_cli_port_in_use_is_one_line(tmp_path):
    """A port another program holds, or an unknown host, is an `error:` line and exit code 2, before the model loads."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for arguments, message in ((["--port", str(port)], f"error: cannot listen on 127.0.0.1:{port}: "),
                                   (["--host", "256.0.0.1"], "error: cannot listen on 256.0.0.1:7860: unknown host")):
            done = subprocess.run([sys.executable, "-m", "mllm_explain", "app", *arguments], capture_output=True,
                                  text=True, cwd=tmp_path, timeout=120, env=ENV)
            assert done.returncode == 2 and done.stderr.startswith(message), done.stderr
            assert len(done.stderr.splitlines()) == 1 and "loading model" not in done.stderr


@pytest.fixture(scope="module")
def server():
    """`mllm-explain app --port N` on the bundled model, as a user starts it, in its own process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "mllm_explain", "app", "--port", str(port),
                                "--max-new-tokens", "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=ENV)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urlopen(url, timeout=5) as response:
                assert response.status == 200
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"mllm-explain app did not start: {process.communicate()[1][-2000:]}")
            time.sleep(0.2)
    yield url
    process.terminate()
    out, err = process.communicate(timeout=30)
    assert f"mllm-explain app: {url}/" in out, out
    assert "Traceback" not in err, err  # the bad requests were messages, not crashes


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def decode(uri: str) -> np.ndarray:
    return decode_png(base64.b64decode(uri.split(",", 1)[1]))


def test_page_in_the_browser(server, model, tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    expected = explain(model, SCENE, PROMPT, answer=ANSWER, method="tam")
    expected_maps = page_data(expected)["tokens"]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            # a corrupt upload: a message, and the page stays usable
            page.set_input_files("#image", str(corrupt))
            page.click("#run")
            page.wait_for_selector("#error:not([hidden])")
            assert "not an image file" in page.inner_text("#error")
            assert page.is_enabled("#run") and page.inner_text("#status") == ""

            # the real thing: tam and msea_arc on the example scene, teacher-forced
            page.set_input_files("#image", str(SCENE))
            page.fill("#answer", ANSWER)
            page.check('input[name="methods"][value="msea_arc"]')
            page.evaluate("""() => { window.seen = []; const el = document.getElementById("status");
                new MutationObserver(() => window.seen.push(el.textContent)).observe(el, {childList: true,
                characterData: true, subtree: true}); }""")
            with page.expect_response("**/explain") as response:
                page.click("#run")
            assert response.value.ok
            assert page.evaluate("window.seen")[0].startswith("running")  # shown while the request ran
            page.wait_for_selector("#result:not([hidden])")
            assert page.is_hidden("#error")
            assert page.locator("#words .word").all_inner_texts() == expected.words
            assert page.locator("#maps .card").count() == 2 and page.locator(".method").count() == 2
            assert page.get_attribute('.method[data-method="tam"] a.maps', "download") == "tam-maps.npz"
            flags = page.inner_text('#maps .card[data-method="tam"] .flags')
            assert ("may not be in the image" in flags) == bool(expected.ungrounded_words), flags

            # a clicked word, then a shift-clicked run: each method's map is `explain`'s (`Explanation.phrase_map`)
            star = expected.words.index("star")
            for selection, (first, last) in (([star], (star, star)), ([star - 1, star], (star - 1, star))):
                wanted = f"/tam/map.png?first={first}&last={last}"
                with page.expect_response(lambda r, wanted=wanted: r.url.endswith(wanted)) as got:
                    for number, word in enumerate(selection):
                        page.click(f'#words .word[data-word="{word}"]', modifiers=["Shift"] if number else [])
                assert np.abs(decode_png(got.value.body()) - decode_png(phrase_png(expected, first, last))).max() <= 2
                assert page.locator("#words .word.on").all_inner_texts() == expected.words[first:last + 1]
                for method in ("tam", "msea_arc"):
                    page.wait_for_function(f"""() => {{ const img = document.querySelector(
                        '#maps .card[data-method="{method}"] img'); return img.complete && img.naturalWidth > 0
                        && img.src.endsWith('first={first}&last={last}'); }}""")
            page.keyboard.press("Shift+ArrowRight")  # the run grows by a word
            assert page.locator("#words .word.on").all_inner_texts() == expected.words[star - 1:star + 2]

            # the viewer of tam: clicking a token shows the map `explain` computes for it
            viewer = page.frame_locator('.method[data-method="tam"] iframe')
            t = expected.tokens.index(" star")
            viewer.locator('#heatmap[data-shown-token="0"]').wait_for()  # its script ran: the first token is shown
            viewer.locator(f'.token[data-token="{t}"]').click()
            viewer.locator(f'#heatmap[data-shown-token="{t}"]').wait_for()
            shown = viewer.locator("#heatmap").get_attribute("src")
            difference = np.abs(decode(shown) - decode(expected_maps[t]["heatmaps"][0]))
            assert difference.max() <= 2, difference.max()

            # the reverse query: click the image at the star's map peak, then drag a box around it
            heat = expected.maps_at((256, 256))[t]
            y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
            page.wait_for_function("() => document.getElementById('pick-image').naturalWidth > 0")
            page.locator("#pick-image").scroll_into_view_if_needed()
            box = page.locator("#pick-image").bounding_box()
            page.select_option("#reverse-method", "tam")

            def at(u: float, v: float) -> tuple[float, float]:
                return box["x"] + u * box["width"], box["y"] + v * box["height"]

            with page.expect_response(lambda r: "/region?" in r.url) as response:
                page.mouse.click(*at((x + 0.5) / 256, (y + 0.5) / 256))
            sent = parse_qs(urlparse(response.value.url).query)
            fx, fy = float(sent["x"][0]), float(sent["y"][0])
            assert abs(fx - (x + 0.5) / 256) < 0.01 and abs(fy - (y + 0.5) / 256) < 0.01 and "x2" not in sent
            page.wait_for_selector("#reverse-list li")
            rows = page.locator("#reverse-list li")
            assert rows.count() == len(expected.tokens)
            listed = [int(rows.nth(i).get_attribute("data-token")) for i in range(rows.count())]
            assert listed == [row["index"] for row in region_query(expected, fx, fy)]
            assert page.is_visible("#marker") and page.is_hidden("#box")

            corner, other = (max(0.0, (x - 30) / 256), max(0.0, (y - 30) / 256)), (min(1.0, (x + 30) / 256),
                                                                                 min(1.0, (y + 30) / 256))
            with page.expect_response(lambda r: "/region?" in r.url and "x2=" in r.url) as response:
                page.mouse.move(*at(*corner))
                page.mouse.down()
                page.mouse.move(*at(*other), steps=5)
                page.mouse.up()
            sent = {key: float(value[0]) for key, value in parse_qs(urlparse(response.value.url).query).items()}
            assert abs(sent["x2"] - other[0]) < 0.01 and abs(sent["y2"] - other[1]) < 0.01
            top = region_query(expected, sent["x"], sent["y"], sent["x2"], sent["y2"])[0]["index"]
            page.wait_for_function(f"() => document.querySelector('#reverse-list li').dataset.token === '{top}'")
            assert page.is_visible("#box") and page.is_hidden("#marker")

            # an empty prompt: a message; the result shown stays
            page.fill("#prompt", "")
            page.click("#run")
            page.wait_for_selector("#error:not([hidden])")
            assert "the prompt is empty" in page.inner_text("#error")
        finally:
            browser.close()


def test_tokens_download_is_json(client):
    result = post(client, SCENE.read_bytes()).json()
    assert json.loads(client.get(result["methods"][0]["tokens"]).text)["answer"] == ANSWER

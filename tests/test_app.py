"""`mllm-explain app` on the bundled model: the endpoints through Starlette's TestClient (errors are messages, no
path from the request is ever read), and the page in headless Chromium against a live uvicorn server (upload,
explain with tam, the viewer's map of a clicked word equals `explain`'s, the reverse query, a corrupt upload and an
empty prompt as messages with the server still answering)."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from starlette.testclient import TestClient  # noqa: E402
from test_report import CHROMIUM, CHROMIUM_ARGS, require_chromium  # noqa: E402

from mllm_explain.adapters import load_model  # noqa: E402
from mllm_explain.app import create_app, point_query  # noqa: E402
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
    rows = client.get(tam["point"], params={"x": 0.3, "y": 0.6}).json()["tokens"]
    assert rows == point_query(expected, 0.3, 0.6)
    assert [row["value"] for row in rows] == sorted((row["value"] for row in rows), reverse=True)


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


def test_unknown_results_and_points_are_messages(client):
    assert client.get("/result/nope/tam/maps.npz").status_code == 404
    assert "no such result" in client.get("/result/nope/tam/point?x=0&y=0").json()["error"]
    point = post(client, SCENE.read_bytes()).json()["methods"][0]["point"]
    assert "outside the image" in client.get(point, params={"x": 1.5, "y": 0}).json()["error"]
    assert "numbers" in client.get(point, params={"x": "left"}).json()["error"]
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


@pytest.fixture(scope="module")
def server(model):
    """A live uvicorn server of the app on a free port, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(model, max_new_tokens=12), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), dtype=np.int16)


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

            # the real thing: tam on the example scene, teacher-forced
            page.set_input_files("#image", str(SCENE))
            page.fill("#answer", ANSWER)
            page.evaluate("""() => { window.seen = []; const el = document.getElementById("status");
                new MutationObserver(() => window.seen.push(el.textContent)).observe(el, {childList: true,
                characterData: true, subtree: true}); }""")
            with page.expect_response("**/explain") as response:
                page.click("#run")
            assert response.value.ok
            assert page.evaluate("window.seen")[0].startswith("running")  # shown while the request ran
            page.wait_for_selector("#result:not([hidden])")
            assert page.is_hidden("#error") and page.inner_text("#answer-text") == expected.answer
            assert page.locator(".method").count() == 1
            assert page.get_attribute(".method a.maps", "download") == "tam-maps.npz"

            # the viewer of tam: clicking a word shows the map `explain` computes for it
            viewer = page.frame_locator('.method[data-method="tam"] iframe')
            t = expected.tokens.index(" star")
            viewer.locator(f'.token[data-token="{t}"]').click()
            shown = viewer.locator("#heatmap").get_attribute("src")
            difference = np.abs(decode(shown) - decode(expected_maps[t]["heatmaps"][0]))
            assert difference.max() <= 2, difference.max()

            # the reverse query: click the image at the star's map peak; its token comes first
            heat = expected.maps_at((256, 256))[t]
            y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
            page.wait_for_function("() => document.getElementById('pick-image').naturalWidth > 0")
            page.locator("#pick-image").scroll_into_view_if_needed()
            box = page.locator("#pick-image").bounding_box()
            with page.expect_response(lambda r: "/point?" in r.url) as response:
                page.mouse.click(box["x"] + (x + 0.5) / 256 * box["width"],
                                 box["y"] + (y + 0.5) / 256 * box["height"])
            sent = parse_qs(urlparse(response.value.url).query)
            fx, fy = float(sent["x"][0]), float(sent["y"][0])
            assert abs(fx - (x + 0.5) / 256) < 0.01 and abs(fy - (y + 0.5) / 256) < 0.01
            page.wait_for_selector("#reverse-list li")
            rows = page.locator("#reverse-list li")
            assert rows.count() == len(expected.tokens)
            listed = [int(rows.nth(i).get_attribute("data-token")) for i in range(rows.count())]
            assert listed == [row["index"] for row in point_query(expected, fx, fy)]

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

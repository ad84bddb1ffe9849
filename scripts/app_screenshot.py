"""The README's screenshot of `mllm-explain app` (docs/img/app.png): the bundled model explains examples/scene.png
with msea_arc and tam, and the run of words "orange cross" is selected.

    python scripts/app_screenshot.py [docs/img/app.png]

Needs the `app` extra, Playwright and Chromium at /usr/bin/chromium (as the browser tests)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PHRASE = ("orange", "cross")


def main(out: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mllm_explain", "app", "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urlopen(url, timeout=5).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("mllm-explain app did not start") from None
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1180, "height": 960})
            page.goto(url)
            page.set_input_files("#image", str(ROOT / "examples" / "scene.png"))
            page.check('input[name="methods"][value="msea_arc"]')
            page.click("#run")
            page.wait_for_selector("#result:not([hidden])", timeout=600_000)
            words = page.locator("#words .word").all_inner_texts()
            first = next(w for w in range(len(words) - 1) if tuple(words[w:w + 2]) == PHRASE)
            page.click(f'#words .word[data-word="{first}"]')
            page.click(f'#words .word[data-word="{first + 1}"]', modifiers=["Shift"])
            page.wait_for_function("() => [...document.querySelectorAll('#maps img')].every("
                                   "(img) => img.complete && img.naturalWidth > 0 && img.src.includes('last='))")
            page.evaluate("document.getElementById('form').scrollIntoView()")
            page.evaluate("document.activeElement.blur()")
            shot = out.with_suffix(".full.png")
            page.screenshot(path=str(shot))
            browser.close()
        Image.open(shot).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
        shot.unlink()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "app.png")

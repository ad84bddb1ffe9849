"""`mllm-explain app`: a local web app to explain an uploaded image's answer with one or several methods.

Built on Starlette (served by uvicorn, uploads parsed by python-multipart), the `app` extra: three small
pure-Python packages (200 kB of wheels together, no compiled parts).  Gradio 6.31 would add about 20 packages over the
core install (pandas, FastAPI, its bundled front end, ...): 45 MB of wheels, 138 MB unpacked (pip, 2026-12-05), for
a form and a results area.  Starlette's `TestClient` tests the endpoints
in-process, and the front end is one small page plus the report's own viewer (`report.html.render_html`), so
the app shows exactly what `mllm-explain explain` writes to report.html.

Endpoints (all JSON errors are `{"error": message}` with a 4xx status, the message a `UserError`'s):

- `GET /`: the page: an image upload, the prompt, an optional answer, a checkbox per method.
- `POST /explain` (multipart: `image` file, `prompt`, `answer`, `methods` repeated): runs `explain_many` and
  returns `{"id", "answer", "words", "image", "methods": [{"name", "report", "map", "maps", "tokens", "region",
  "grounding", "ungrounded"}]}` (`grounding`: each word's score, `ungrounded`: the nouns below the threshold).
- `GET /progress`: `{"busy", "label"}`, the running request's stage (the page polls it while it waits).
- `GET /result/{id}/image.png`: the explained image (upright RGB, longest side at most 512).
- `GET /result/{id}/{method}/report.html`: the report page of one method (shown in a sandboxed iframe).
- `GET /result/{id}/{method}/maps.npz`, `.../tokens.json`: the downloads, as `mllm-explain explain` writes them.
- `GET /result/{id}/{method}/map.png?first=&last=`: the map of the run of words `first`..`last` (word indices, both
  included; one word when they are equal) over the image, `Explanation.phrase_map` blended as the report blends it.
- `GET /result/{id}/{method}/region?x=&y=[&x2=&y2=]`: the reverse query: for a point (x, y) in [0, 1]² of the
  image, or the box from it to (x2, y2), every answer token's map value there (its mean over the box), highest first.

The address is bound first (`listen`), then the model loads once (`serve`); requests run one at a time (an
`asyncio.Lock`) in a worker thread, so the server keeps answering (the page, `/progress`) while one runs.  Uploads are
read from the request body only: a form field naming a path is refused, never opened.  The last `KEEP` results are
kept in memory for the downloads and queries.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import secrets
import socket
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError
from mllm_explain.explanation import Explanation
from mllm_explain.images import read_image
from mllm_explain.methods import list_methods
from mllm_explain.pipeline import explain_many
from mllm_explain.report import maps_arrays
from mllm_explain.report.html import render_html
from mllm_explain.report.images import display_image, embed_size, overlay

__all__ = ["KEEP", "MAX_UPLOAD_BYTES", "create_app", "listen", "phrase_png", "region_query", "serve", "shown_image"]

KEEP = 8  # results kept in memory (for downloads, report pages and reverse queries)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # a larger request is refused before it is parsed
QUERY_SIDE = 256  # longest side the reverse query reads the maps at: their detail is the vision grid's
IMAGE_SIDE = 512  # longest side of the image the page shows (under the maps and for the reverse query)
DEFAULT_METHODS = ("tam",)
log = logging.getLogger("mllm_explain.app")


class Gone(Exception):
    """A /result/... path names a result or method the app does not hold: a 404 with the message."""


@dataclass(frozen=True)
class Held:
    """One request's result, kept for its downloads and queries: an explanation per method, and the image as the page
    shows it (`shown_image`, made once: every word's map is drawn over it)."""

    explanations: dict[str, Explanation]
    shown: Image.Image


def region_query(explanation: Explanation, x: float, y: float, x2: float | None = None,
                 y2: float | None = None) -> list[dict]:
    """Which answer tokens draw on a point (x, y), or on the box between (x, y) and (x2, y2), of the (first) image,
    in [0, 1]² of its width and height: each token's map value there (a box: its mean over the box), highest first.
    The maps are read at the longest side `QUERY_SIDE`."""
    corners = [(x, y)] if x2 is None or y2 is None else [(x, y), (x2, y2)]
    for u, v in corners:
        if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
            raise UserError(f"the point ({u}, {v}) is outside the image: x and y must lie in [0, 1]")
    one = explanation.for_image(0)
    width, height = embed_size(one.image.width, one.image.height, QUERY_SIDE)
    maps = one.maps_at((height, width))
    xs, ys = sorted(u for u, _ in corners), sorted(v for _, v in corners)
    left, top = min(int(xs[0] * width), width - 1), min(int(ys[0] * height), height - 1)
    right, bottom = max(left + 1, math.ceil(xs[-1] * width)), max(top + 1, math.ceil(ys[-1] * height))
    values = maps[:, top:bottom, left:right].mean(axis=(1, 2))
    order = sorted(range(len(values)), key=lambda t: (-float(values[t]), t))
    return [{"index": t, "token": explanation.tokens[t], "word": explanation.words[explanation.word_index[t]],
             "value": round(float(values[t]), 4)} for t in order]


def shown_image(explanation: Explanation) -> Image.Image:
    """The (first) image as the page shows it: RGB, its longest side at most `IMAGE_SIDE`."""
    return display_image(explanation.image, IMAGE_SIDE)


def phrase_png(explanation: Explanation, first: int, last: int, shown: Image.Image | None = None) -> bytes:
    """PNG of the map of words `first`..`last` (`Explanation.phrase_map`) blended over `shown` (default:
    `shown_image`): the picture the page shows for a clicked word or a selected run of words."""
    shown = shown_image(explanation) if shown is None else shown
    try:
        heat = explanation.phrase_map(first, last, (shown.height, shown.width))
    except IndexError as exc:  # not a run of the answer's words
        raise UserError(str(exc)) from None
    return _png(overlay(shown, heat))


def create_app(model: ModelAdapter, max_new_tokens: int = 64, keep: int = KEEP) -> Starlette:
    """The app around a loaded `model`."""
    results: OrderedDict[str, Held] = OrderedDict()
    lock = asyncio.Lock()
    state = {"busy": False, "label": ""}
    methods = list_methods()

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def found(request: Request) -> tuple[Held, Explanation | None]:
        """The result and method a /result/... path names (`Gone` when it is not held)."""
        result = results.get(request.path_params["id"])
        if result is None:
            raise Gone(f"no such result (the app keeps the last {keep}); explain the image again")
        name = request.path_params.get("method")
        if name is not None and name not in result.explanations:
            raise Gone(f"this result has no method {name!r}; it has {', '.join(result.explanations)}")
        return result, None if name is None else result.explanations[name]

    async def index(request: Request) -> HTMLResponse:
        boxes = "\n".join(f'<label><input type="checkbox" name="methods" value="{name}"'
                          f'{" checked" if name in DEFAULT_METHODS else ""}> {name}</label>' for name in methods)
        return HTMLResponse(PAGE.replace("{{methods}}", boxes))

    async def progress(request: Request) -> JSONResponse:
        return JSONResponse(state)

    async def run(request: Request) -> JSONResponse:
        try:
            size = int(request.headers.get("content-length", "0"))
        except ValueError:
            return error("bad Content-Length header")
        if size > MAX_UPLOAD_BYTES:
            return error(f"the upload is {size / 2**20:.1f} MB, more than the limit of {MAX_UPLOAD_BYTES // 2**20} MB; "
                         "scale the image down first", 413)
        try:
            async with request.form(max_files=1, max_fields=32) as form:
                upload = form.get("image")
                prompt = str(form.get("prompt") or "")
                answer = str(form.get("answer") or "").strip() or None
                chosen = [str(name) for name in form.getlist("methods")]
                if not isinstance(upload, UploadFile):  # a path or any text is never opened
                    raise UserError("choose an image file to upload")
                data = await upload.read(MAX_UPLOAD_BYTES + 1)
                name = f"upload {upload.filename!r}" if upload.filename else "the upload"
        except UserError as exc:
            return error(str(exc))
        except Exception as exc:  # a malformed multipart body, too many fields, ...
            return error(f"cannot read the form: {exc}")
        if len(data) > MAX_UPLOAD_BYTES:
            return error(f"the upload is more than the limit of {MAX_UPLOAD_BYTES // 2**20} MB", 413)
        if not prompt.strip():
            return error("the prompt is empty: type a question or instruction for the model")
        if not chosen:
            return error("choose at least one method")
        unknown = [name for name in chosen if name not in methods]
        if unknown:
            return error(f"unknown method {unknown[0]!r}; choose from {', '.join(methods)}")

        def work() -> Held:
            image = read_image(data, name)
            explanations = explain_many(model, image, prompt, answer=answer, methods=chosen,
                                        max_new_tokens=max_new_tokens, progress=lambda label: state.update(label=label),
                                        notice=log.info)
            return Held(explanations, shown_image(next(iter(explanations.values()))))

        async with lock:
            state.update(busy=True, label="reading the image")
            try:
                held = await run_in_threadpool(work)
            except UserError as exc:
                return error(str(exc))
            except Exception as exc:  # a bug: logged with its traceback, the page gets one line, the server goes on
                log.exception("explaining failed")
                return error(f"internal error: {type(exc).__name__}: {exc}", 500)
            finally:
                state.update(busy=False, label="")
        key = secrets.token_hex(8)
        results[key] = held
        while len(results) > keep:
            results.popitem(last=False)
        first = next(iter(held.explanations.values()))
        return JSONResponse({
            "id": key, "answer": first.answer, "words": first.words, "image": f"/result/{key}/image.png",
            "methods": [{"name": name, "report": f"/result/{key}/{name}/report.html",
                         "map": f"/result/{key}/{name}/map.png", "maps": f"/result/{key}/{name}/maps.npz",
                         "tokens": f"/result/{key}/{name}/tokens.json", "region": f"/result/{key}/{name}/region",
                         "grounding": [None if score is None or not math.isfinite(score) else round(score, 4)
                                       for score in explanation.word_grounding],
                         "ungrounded": explanation.ungrounded_words}
                        for name, explanation in held.explanations.items()],
        })

    async def image(request: Request) -> Response:
        result, _ = found(request)
        return Response(_png(result.shown), media_type="image/png")

    async def report(request: Request) -> Response:
        _, explanation = found(request)
        return HTMLResponse(await run_in_threadpool(render_html, explanation))

    async def maps(request: Request) -> Response:
        _, explanation = found(request)
        body = await run_in_threadpool(_npz, explanation)
        return Response(body, media_type="application/octet-stream", headers=_attachment(request, "maps.npz"))

    async def tokens(request: Request) -> Response:
        _, explanation = found(request)
        body = json.dumps(explanation.to_dict(), indent=1)
        return Response(body, media_type="application/json", headers=_attachment(request, "tokens.json"))

    async def phrase(request: Request) -> Response:
        result, explanation = found(request)
        try:
            first, last = int(request.query_params["first"]), int(request.query_params["last"])
        except (KeyError, ValueError):
            return error("give the run of words as word indices first and last, e.g. ?first=1&last=2")
        try:
            body = await run_in_threadpool(phrase_png, explanation, first, last, result.shown)
        except UserError as exc:
            return error(str(exc))
        return Response(body, media_type="image/png")

    async def region(request: Request) -> JSONResponse:
        _, explanation = found(request)
        query = request.query_params
        try:
            x, y = float(query["x"]), float(query["y"])
            x2, y2 = (float(query["x2"]), float(query["y2"])) if "x2" in query or "y2" in query else (None, None)
        except (KeyError, ValueError):
            return error("give the point as numbers x and y in [0, 1] (a box: also x2 and y2), e.g. ?x=0.5&y=0.25")
        try:
            rows = await run_in_threadpool(region_query, explanation, x, y, x2, y2)
        except UserError as exc:
            return error(str(exc))
        return JSONResponse({"method": request.path_params["method"], "x": x, "y": y, "x2": x2, "y2": y2,
                             "tokens": rows})

    async def missing(request: Request, exc: Gone) -> JSONResponse:
        return error(str(exc.args[0]), 404)

    routes = [
        Route("/", index), Route("/progress", progress), Route("/explain", run, methods=["POST"]),
        Route("/result/{id}/image.png", image), Route("/result/{id}/{method}/report.html", report),
        Route("/result/{id}/{method}/maps.npz", maps), Route("/result/{id}/{method}/tokens.json", tokens),
        Route("/result/{id}/{method}/map.png", phrase), Route("/result/{id}/{method}/region", region),
    ]
    return Starlette(routes=routes, exception_handlers={Gone: missing})


def _attachment(request: Request, filename: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{request.path_params["method"]}-{filename}"'}


def _npz(explanation: Explanation) -> bytes:
    """maps.npz of `explanation`, as `mllm-explain explain` writes it (`maps_arrays`), in memory."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps_arrays(explanation))
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def listen(host: str = "127.0.0.1", port: int = 7860) -> socket.socket:
    """A socket bound to (host, port), taken before the model loads, so that a port in use or an unknown host is a
    `UserError` at once."""
    where = f"{host}:{port}"
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot listen on {where}: unknown host ({getattr(exc, 'strerror', None) or exc})") from None
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {where}: {exc.strerror or exc}; choose another --port or --host") from None
    return sock


def serve(model: ModelAdapter, sock: socket.socket, max_new_tokens: int = 64) -> None:
    """Serve the app for `model` on the bound socket `sock` (`listen`) until Ctrl-C."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"mllm-explain app: http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(create_app(model, max_new_tokens=max_new_tokens), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mllm-explain app</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; }
  form { display: grid; gap: .5rem; max-width: 44rem; }
  textarea, input[type=text] { width: 100%; box-sizing: border-box; font: inherit; }
  fieldset { display: flex; flex-wrap: wrap; gap: .2rem 1rem; }
  #status { color: #36c; min-height: 1.4em; }
  #error { color: #b00; font-weight: bold; }
  #words { font-size: 1.15rem; line-height: 2; user-select: none; }
  #words:focus { outline: 1px dotted #36c; }
  .word { padding: .1rem .25rem; margin-right: .15rem; border-radius: 4px; cursor: pointer; }
  .word:hover { background: #e6eefc; }
  .word.on { background: #36c; color: #fff; }
  .hint { color: #666; font-size: .9rem; }
  .row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
  .card { flex: 0 1 auto; max-width: 512px; }
  .card img { display: block; max-width: 100%; }
  .flags { color: #b00; font-size: .9rem; }
  .flags.none { color: #666; }
  .method { flex: 1 1 40rem; min-width: 30rem; }
  .method iframe { width: 100%; height: 820px; border: 1px solid #ddd; }
  .pick { position: relative; display: inline-block; cursor: crosshair; }
  .pick img { display: block; max-width: 100%; }
  #marker { position: absolute; width: 12px; height: 12px; margin: -7px; border: 2px solid #f0f;
            border-radius: 50%; pointer-events: none; }
  #box { position: absolute; border: 2px solid #f0f; pointer-events: none; box-sizing: border-box; }
  #reverse-list li span { display: inline-block; width: 4rem; text-align: right; margin-right: .5rem; }
</style>
</head>
<body>
<h1>mllm-explain</h1>
<form id="form" enctype="multipart/form-data">
  <label>Image <input type="file" name="image" id="image" accept="image/*" required></label>
  <label>Prompt <textarea name="prompt" id="prompt" rows="2">Describe this image.</textarea></label>
  <label>Answer to explain (optional; empty: the model's own answer)
    <input type="text" name="answer" id="answer"></label>
  <fieldset><legend>Methods</legend>
{{methods}}
  </fieldset>
  <button type="submit" id="run">Explain</button>
</form>
<p id="status" role="status"></p>
<p id="error" role="alert" hidden></p>
<section id="result" hidden>
  <h2>Answer</h2>
  <p class="hint">Click a word for its map; shift-click another to select the run of words between (one map for the
    phrase); &larr;/&rarr; move, with shift they extend.</p>
  <p id="words" tabindex="0" aria-label="the answer's words"></p>
  <p><b id="phrase"></b></p>
  <div class="row" id="maps"></div>
  <h2>Which words draw on a region?</h2>
  <p>Click a point of the image, or drag a box over it: the answer's tokens, by their
    <select id="reverse-method"></select> map's value there (over a box, its mean).</p>
  <div class="pick" id="pick"><img id="pick-image" alt="the explained image" draggable="false"><span id="marker"
    hidden></span><span id="box" hidden></span></div>
  <ol id="reverse-list"></ol>
  <h2>Each method's viewer</h2>
  <p class="hint">The report's page (as <code>mllm-explain explain</code> writes it): each token's map, the top
    candidates and the text context.</p>
  <div class="row" id="methods"></div>
</section>
<script>
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("form"), status = $("status"), errorEl = $("error"), result = $("result");
  let current = null, poller = null, anchor = 0, first = 0, last = 0;

  function showError(message) { errorEl.textContent = message; errorEl.hidden = !message; }

  function element(tag, props, ...children) {
    const el = Object.assign(document.createElement(tag), props || {});
    el.append(...children);
    return el;
  }

  function flags(m) {
    if (m.grounding.every((score) => score === null))
      return element("p", {className: "flags none"}, "no grounding scores");
    if (!m.ungrounded.length)
      return element("p", {className: "flags none"}, "every noun grounded");
    const listed = m.ungrounded.map((w) => current.words[w] + " (" + m.grounding[w].toFixed(2) + ")").join(", ");
    return element("p", {className: "flags"}, "may not be in the image: " + listed);
  }

  function select(anchorWord, from, to) {
    anchor = anchorWord; first = Math.min(from, to); last = Math.max(from, to);
    document.querySelectorAll("#words .word").forEach((el) => {
      const w = Number(el.dataset.word);
      el.classList.toggle("on", first <= w && w <= last);
    });
    const text = current.words.slice(first, last + 1).join(" ");
    $("phrase").textContent = (first === last ? "Word " + (first + 1) : "Words " + (first + 1) + "\\u2013" + (last + 1))
      + ": \\u201c" + text + "\\u201d";
    document.querySelectorAll("#maps .card").forEach((card) => {
      const m = current.methods.find((method) => method.name === card.dataset.method);
      const img = card.querySelector("img");
      img.src = m.map + "?first=" + first + "&last=" + last;
      img.alt = m.name + " map of \\u201c" + text + "\\u201d";
    });
  }

  function render(data) {
    current = data;
    $("words").replaceChildren(...data.words.map((word, w) => {
      const span = element("span", {className: "word"}, word);
      span.dataset.word = String(w);
      return span;
    }));
    $("maps").replaceChildren(...data.methods.map((m) => {
      const img = element("img", {className: "map"});
      img.addEventListener("error", () => showError("cannot show the " + m.name + " map"));
      const card = element("div", {className: "card"}, element("h3", {}, m.name), img, flags(m));
      card.dataset.method = m.name;
      return card;
    }));
    $("pick-image").src = data.image;
    $("marker").hidden = true;
    $("box").hidden = true;
    $("reverse-list").replaceChildren();
    $("reverse-method").replaceChildren(...data.methods.map((m) => element("option", {value: m.name}, m.name)));
    $("methods").replaceChildren(...data.methods.map((m) => {
      const frame = element("iframe", {src: m.report, title: "viewer: " + m.name});
      frame.setAttribute("sandbox", "allow-scripts");
      const box = element("div", {className: "method"},
        element("h3", {}, m.name),
        element("p", {}, element("a", {href: m.maps, download: m.name + "-maps.npz", className: "maps"}, "maps.npz"),
                " \\u00b7 ", element("a", {href: m.tokens, download: m.name + "-tokens.json", className: "tokens"},
                                   "tokens.json")),
        frame);
      box.dataset.method = m.name;
      return box;
    }));
    result.hidden = false;
    select(0, 0, 0);
  }

  $("words").addEventListener("click", (event) => {
    const el = event.target.closest(".word");
    if (!el || !current) return;
    const w = Number(el.dataset.word);
    if (event.shiftKey) select(anchor, anchor, w); else select(w, w, w);
  });

  $("words").addEventListener("keydown", (event) => {
    if (!current || (event.key !== "ArrowLeft" && event.key !== "ArrowRight")) return;
    event.preventDefault();
    const step = event.key === "ArrowLeft" ? -1 : 1, end = current.words.length - 1;
    if (event.shiftKey) {
      const moving = anchor === first ? last : first;
      select(anchor, anchor, Math.min(end, Math.max(0, moving + step)));
    } else {
      const w = Math.min(end, Math.max(0, (step < 0 ? first : last) + step));
      select(w, w, w);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    $("run").disabled = true;
    status.textContent = "running\\u2026";
    poller = setInterval(async () => {
      try {
        const p = await (await fetch("/progress")).json();
        if (p.busy && p.label) status.textContent = "running\\u2026 " + p.label;
      } catch (e) { /* the next poll tries again */ }
    }, 400);
    try {
      const response = await fetch("/explain", {method: "POST", body: new FormData(form)});
      const data = await response.json();
      if (!response.ok) showError(data.error || ("error " + response.status));
      else render(data);
    } catch (e) {
      showError("the request failed: " + e);
    } finally {
      clearInterval(poller);
      status.textContent = "";
      $("run").disabled = false;
    }
  });

  let dragStart = null;

  function fraction(event) {
    const box = $("pick-image").getBoundingClientRect();
    return [Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
            Math.min(1, Math.max(0, (event.clientY - box.top) / box.height))];
  }

  function drawBox(a, b) {
    Object.assign($("box").style, {left: 100 * Math.min(a[0], b[0]) + "%", top: 100 * Math.min(a[1], b[1]) + "%",
      width: 100 * Math.abs(a[0] - b[0]) + "%", height: 100 * Math.abs(a[1] - b[1]) + "%"});
  }

  $("pick").addEventListener("pointerdown", (event) => {
    if (!current) return;
    event.preventDefault();
    dragStart = fraction(event);
  });

  $("pick").addEventListener("pointermove", (event) => {
    if (!dragStart) return;
    drawBox(dragStart, fraction(event));
    $("box").hidden = false;
    $("marker").hidden = true;
  });

  window.addEventListener("pointerup", async (event) => {
    if (!dragStart) return;
    const a = dragStart, b = fraction(event), rect = $("pick-image").getBoundingClientRect();
    dragStart = null;
    const isBox = Math.abs(a[0] - b[0]) * rect.width >= 4 || Math.abs(a[1] - b[1]) * rect.height >= 4;
    let query = "?x=" + a[0].toFixed(4) + "&y=" + a[1].toFixed(4);
    if (isBox) {
      drawBox(a, b);
      query += "&x2=" + b[0].toFixed(4) + "&y2=" + b[1].toFixed(4);
    } else {
      Object.assign($("marker").style, {left: (100 * a[0]) + "%", top: (100 * a[1]) + "%"});
    }
    $("box").hidden = !isBox;
    $("marker").hidden = isBox;
    const method = current.methods.find((m) => m.name === $("reverse-method").value) || current.methods[0];
    const response = await fetch(method.region + query);
    const data = await response.json();
    if (!response.ok) { showError(data.error); return; }
    $("reverse-list").replaceChildren(...data.tokens.map((t) => {
      const li = element("li", {}, element("span", {}, t.value.toFixed(3)), JSON.stringify(t.token));
      li.dataset.token = String(t.index);
      return li;
    }));
  });
})();
</script>
</body>
</html>
"""

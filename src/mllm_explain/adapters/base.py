"""The model side of explanations: one adapter per model family turns (image, prompt, answer) into a
`Trace` -- final-norm hidden states of one teacher-forced forward, plus where the vision tokens sit:
the `View`s they form (one grid, or tiles and an overview).  Nothing outside `adapters/` knows a model
class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature
from transformers.video_utils import VideoMetadata

from mllm_explain.errors import UserError
from mllm_explain.limits import MAX_VISION_TOKENS
from mllm_explain.video import DEFAULT_FPS, Video, read_video
from mllm_explain.views import FULL_BOX, Box, View

LOGIT_BLOCK_BYTES = 64 * 2**20  # bytes of W that `logits` converts to float32 at a time: its temporary memory
REPLACEMENT = "\ufffd"  # what decoding shows for bytes that are no whole UTF-8 character
_MAX_CHARACTER_TOKENS = 4  # a UTF-8 character has at most 4 bytes, and a token holds at least one


@dataclass
class Trace:
    """What one teacher-forced forward at one input scale yields.

    Positions index the decoder's full sequence (`ModelAdapter.sequence_ids`: the token ids, after any vision
    features the model prepends); the vision tokens are the `views`' positions, in view order.
    """

    scale: float
    input_ids: Tensor  # (L,)
    hidden: Tensor  # (L, d) final-norm hidden states, float32 (all L: the unread template rows are < 3%)
    views: list[View]
    prompt_positions: Tensor  # (P,) the user's prompt text
    answer_positions: Tensor  # (T,) answer tokens
    attention: Tensor | None = None  # (T, L) last-layer attention rows of the positions predicting answer tokens
    inputs: Any = field(default=None, repr=False)  # the processor inputs that were run, kept only for gradients

    @property
    def vision_positions(self) -> Tensor:
        """(N,) every view's positions, view after view."""
        return torch.cat([view.positions for view in self.views])

    @property
    def nbytes(self) -> int:
        """Bytes of tensor storage the trace holds (on any device): what a lean trace keeps small."""
        tensors = [self.input_ids, self.hidden, *(view.positions for view in self.views), self.prompt_positions,
                   self.answer_positions, self.attention, *(self.inputs.values() if self.inputs is not None else ())]
        return sum(t.nbytes for t in tensors if torch.is_tensor(t))

    @property
    def answer_ids(self) -> Tensor:
        return self.input_ids[self.answer_positions]

    @property
    def context_positions(self) -> Tensor:
        """Text that can be context for an answer token: the prompt, then the answer."""
        return torch.cat([self.prompt_positions, self.answer_positions])


def scaled_size(image: Image.Image, scale: float) -> tuple[int, int]:
    """(width, height) of `image` resized by `scale`, at least 1 px each way, as `scaled_image` resizes it."""
    return max(1, round(image.width * scale)), max(1, round(image.height * scale))


def most_detailed_scale(image: Image.Image, tokens: Callable[[tuple[int, int]], int], bound: int,
                        steps: int = 64) -> float:
    """The smallest scale up to 4 (in steps of 1/`steps`) at which `image` gets the most vision tokens it can within
    `bound`, `tokens` counting them for a (width, height); 1 where no scale gives more.  For processors whose tiling
    follows the image's size by rules with no closed inverse (Ovis2's covering grid, Step 3.7's sliding window)."""
    best, most = 1.0, tokens(image.size)
    for step in range(steps + 1, 4 * steps + 1):
        count = tokens(scaled_size(image, step / steps))
        if most < count <= bound:
            best, most = step / steps, count
    return best


Media = Image.Image | Sequence[Image.Image] | Video  # what one prompt shows: an image, several, or a video


def as_images(images: Image.Image | Sequence[Image.Image]) -> list[Image.Image]:
    """One prompt's images as a list: an image alone, or the images of a list or tuple."""
    return [images] if isinstance(images, Image.Image) else list(images)


def _pixels(image: Image.Image) -> int:
    return image.width * image.height


def _vision_end(views: Sequence[View]) -> int:
    """The position after the last vision token: the user's prompt is searched from there."""
    return int(max(view.positions.max() for view in views)) + 1


def _concat(parts: list) -> Tensor | list:
    """One batch of the processor's per-row outputs: tensors concatenated, lists (Unlimited-OCR's per-image tile
    counts and grids, which the processor leaves unconverted) joined."""
    return torch.cat(parts) if isinstance(parts[0], Tensor) else [item for part in parts for item in part]


def _find_subsequence(haystack: Sequence[int], needle: Sequence[int], start: int) -> int:
    n = len(needle)
    for i in range(len(haystack) - n, start - 1, -1):
        if list(haystack[i:i + n]) == list(needle):
            return i
    return -1


class ModelAdapter:
    """Wraps a Hugging Face MLLM and its processor behind the calls the explanation methods use.

    A family adapter declares its `model_types` (with an example checkpoint each) and its table text, and
    overrides `vision_grid` (one grid of vision tokens) or `vision_views` (tiles, overviews, separators),
    `scaled_image` for fixed-resolution encoders and `processor_kwargs` where a scale above 1 needs the
    processor's size lifted; everything else is shared.

    `max_vision_tokens` bounds every scale but 1 (the processor's own size): a scale that would feed more
    vision tokens is refused by `check_scale` (and so skipped by `explain` with one note).
    """

    # Each `model_type` the adapter reads, with an example checkpoint (the README's table shows both)
    model_types: ClassVar[dict[str, str]] = {}
    # What the README's table of supported models says of the family (scripts/models_table.py renders it)
    layout_text: ClassVar[str] = ""  # how the vision tokens form views
    scales_text: ClassVar[str] = ""  # what MSEA's input scales do for it
    # Whether one prompt may hold several images: its processor writes each image's tokens as it writes a lone image's
    # (`prompt_views` places them), checked by the layout test with several images
    several_images: ClassVar[bool] = True
    # The `model_type`s whose prompt may hold a video, fed through the processor's video processor (`video_views`
    # places it), each checked by the layout test on a video
    video_model_types: ClassVar[frozenset[str]] = frozenset()
    max_vision_tokens: int = MAX_VISION_TOKENS
    # The text config's factors the model multiplies and divides its LM head's logits by (Cohere Compass's
    # `logit_scale`, HyperCLOVA X's `logits_scaling`, Muse's `output_multiplier`; Granite's `logits_scaling`,
    # Inkling's `logits_mup_width_multiplier`), before any soft-capping
    logit_multiplier_key: ClassVar[str] = ""
    logit_divisor_key: ClassVar[str] = ""
    # A full checkpoint's `model_type` -> its part that writes the text answer, with its config in `<part>_config`
    # (Qwen2.5-Omni's and Qwen3-Omni's thinker, beside a talker that speaks the answer): `load_model` loads that part
    # alone, and the adapter explains it
    submodels: ClassVar[dict[str, str]] = {}

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        part = self.submodels.get(model.config.model_type)
        self.full_model = model  # as given; `model` is its text-writing part where `submodels` names one
        self.model = (getattr(model, part) if part else model).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name_or_path = name_or_path

    # --- family facts -------------------------------------------------------------------------
    def vision_grid(self, inputs) -> tuple[int, int]:
        """(gh, gw) of the vision tokens that `inputs` (the processor's output) puts in the sequence."""
        raise NotImplementedError

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The views of the vision tokens in `inputs`, the processor's output for `image` (as fed, after
        `scaled_image`, whose `grid_box` it was given).  Default: every image token, one `vision_grid`."""
        return [View(self.image_token_positions(inputs), self.vision_grid(inputs), grid_box=grid_box)]

    def prefix_length(self, inputs) -> int:
        """Rows of the decoder's sequence before the first of `inputs`' token ids: vision features the model prepends
        with no placeholder token (GIT); 0 where every row is a token of `input_ids`."""
        return 0

    def sequence_ids(self, inputs, ids: Tensor) -> Tensor:
        """(L,) ids of the decoder's sequence on the CPU: `ids` (a row of `inputs`' token ids, answer ids appended or
        not) after `prefix_length` rows read as `image_token_id`, so that one position indexes a trace's states and
        ids alike."""
        prefix = self.prefix_length(inputs)
        ids = ids.cpu()
        return torch.cat([torch.full((prefix,), self.image_token_id, dtype=ids.dtype), ids]) if prefix else ids

    def image_token_positions(self, inputs) -> Tensor:
        """(n,) positions of the image placeholder tokens in the first row of `inputs`, on the CPU."""
        return (inputs["input_ids"][0] == self.image_token_id).nonzero().flatten().cpu()

    def video_token_positions(self, inputs) -> Tensor:
        """(n,) positions of the video placeholder tokens in the first row of `inputs`, on the CPU."""
        return (inputs["input_ids"][0] == self.video_token_id).nonzero().flatten().cpu()

    def prompt_views(self, inputs, images: Sequence[Image.Image] | Video, boxes: Sequence[Box], prompt: str,
                     scale: float = 1.0) -> list[View]:
        """The views of every image of one prompt in `inputs` (one row), image after image, each with its
        `image_index` (a video's: `video_views`).  One image: `vision_views`.  Several: each image's views as the
        processor makes them for the image alone, moved to where that image's placeholder tokens sit among all of them
        (the processor writes each image's placeholders as it writes a lone image's, in order)."""
        if isinstance(images, Video):
            return self.video_views(inputs, images)
        if len(images) == 1:
            return self.vision_views(inputs, images[0], boxes[0])
        self.check_images(len(images))
        placeholders, used, views = self.image_token_positions(inputs), 0, []
        for index, (image, box) in enumerate(zip(images, boxes)):
            alone = self.encode(image, prompt, scale=scale)
            own = self.image_token_positions(alone)
            for view in self.vision_views(alone, image, box):
                rank = torch.searchsorted(own, view.positions).clamp_max(len(own) - 1)
                if not torch.equal(own[rank], view.positions) or used + len(own) > len(placeholders):
                    raise RuntimeError(f"{self.model.config.model_type}: image {index}'s vision tokens are not "
                                       f"where its placeholders are")
                views.append(replace(view, positions=placeholders[used + rank], image_index=index))
            used += len(own)
        if used != len(placeholders):
            raise RuntimeError(f"{used} placeholder tokens for {len(images)} images alone, "
                               f"{len(placeholders)} together")
        return views

    def video_views(self, inputs, video: Video) -> list[View]:
        """The views of the video tokens in `inputs` (one row): one per group of frames the model merges in time."""
        raise NotImplementedError

    def check_video(self) -> None:
        """Refuse a video in one line where the family takes none here."""
        if self.model.config.model_type not in self.video_model_types or \
                getattr(self.processor, "video_processor", None) is None:
            raise UserError(f"{self.model.config.model_type} takes no video here: its processor has no video processor "
                            f"or its video layout is not verified")

    def sample_video(self, path: str | Path, fps: float | None = None, frames: int | None = None) -> Video:
        """The frames of the video file at `path` that the model's video processor samples (`fps` frames a second, or
        `frames` frames; default: the processor's own rate, else `video.DEFAULT_FPS`)."""
        self.check_video()
        if fps is not None and frames is not None:
            raise UserError("give the frame rate or the number of frames, not both")
        processor = self.processor.video_processor
        if fps is None and frames is None and getattr(processor, "fps", None) is None \
                and getattr(processor, "num_frames", None) is None:
            fps = DEFAULT_FPS
        return read_video(path, lambda metadata, **_: processor.sample_frames(metadata, num_frames=frames, fps=fps))

    def check_images(self, count: int) -> None:
        """Refuse several images in one prompt in one line where the family has not been shown to place them."""
        if count > 1 and not self.several_images:
            raise UserError(f"{self.model.config.model_type} takes one image per prompt here ({count} given): its "
                            f"placement of several images' vision tokens is not verified")

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Raise UserError when the model cannot take `image` at `scale` (here: any scale is possible)."""

    def bound_tokens(self, scale: float, tokens: int, what: str) -> None:
        """Refuse `scale` in one line where it feeds more than `max_vision_tokens` vision tokens: `tokens`, the count of
        the input `what` names (e.g. "a 504x462 px input", "3x4 tiles and the thumbnail")."""
        if tokens > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives {what} of {tokens} vision tokens, more than "
                            f"max_vision_tokens={self.max_vision_tokens}")

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Keyword settings of the processor's call on `image`, `scaled_image`'s output at `scale` (here: none).
        A family whose processor would shrink an enlarged image back to its default size lifts that size here,
        for this call only: the default is the processor's, not a limit of the model."""
        return {}

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        """The image to feed at `scale` (`check_scale`d) and the part of the grid it covers (native resolution: all)."""
        self.check_scale(image, scale)
        if scale == 1.0:
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(scaled_size(image, scale), Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def scaled_images(self, images: Image.Image | Sequence[Image.Image] | Video,
                      scale: float) -> tuple[list[Image.Image] | Video, list[Box]]:
        """`scaled_image` of each of one prompt's images (several only where the family takes them); a video as it is,
        at scale 1 only."""
        if isinstance(images, Video):
            self.check_video()
            if scale != 1.0:
                raise UserError("a video is explained at scale 1 only (its frames at the video processor's own size)")
            return images, [FULL_BOX] * len(images.frames)
        images = as_images(images)
        self.check_images(len(images))
        pairs = [self.scaled_image(image, scale) for image in images]
        return [image for image, _ in pairs], [box for _, box in pairs]

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale at which the processor as shipped (no size lifted) feeds `image` in more detail,
        within `max_vision_tokens`: the grounding score's detail view, kept to inputs the model was made to read
        (an enlarged scale past it is MSEA's to take).  1 where the encoder's resolution is fixed or unknown."""
        return 1.0

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.language_model.norm

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.model.model.language_model.layers[-1].self_attn

    # --- shared machinery ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def unembedding(self) -> Tensor:
        """(V, d) LM-head matrix W: row c scores token id c, in the model's dtype and on its device."""
        return self.model.get_output_embeddings().weight

    @torch.no_grad()
    def unembed_rows(self, ids: Tensor) -> Tensor:
        """(n, d) float32 rows of W of token `ids`, on the CPU: all a map reads of W (the classes
        explained, never a float32 copy of the whole matrix)."""
        W = self.unembedding
        return W[ids.to(W.device)].float().cpu()

    @torch.no_grad()
    def logits(self, states: Tensor, block_rows: int | None = None) -> Tensor:
        """(n, V) float32 logits of (n, d) `states`, on the CPU.  Computed on W's device in float32,
        `block_rows` vocabulary rows at a time (default: LOGIT_BLOCK_BYTES of float32 W), so that
        whatever the model's dtype no float32 copy of the whole W is made (2 GiB for a 7B model).  Scaled by the text
        config's `logit_multiplier_key` and `logit_divisor_key` factors, then soft-capped where it has a
        `final_logit_softcapping` (Gemma 2 and 4, Inkling 2, Mistral Large 4, Muse), as the model computes its own."""
        W = self.unembedding
        rows = block_rows or max(1, LOGIT_BLOCK_BYTES // (4 * W.shape[1]))
        states = states.to(W.device, torch.float32)
        out = torch.empty(len(states), len(W))
        for start in range(0, len(W), rows):
            out[:, start:start + rows] = (states @ W[start:start + rows].float().T).cpu()
        if self.logit_multiplier_key:
            out *= getattr(self.model.config.get_text_config(), self.logit_multiplier_key)
        if self.logit_divisor_key:
            out /= getattr(self.model.config.get_text_config(), self.logit_divisor_key)
        cap = self.logit_softcap
        return out if cap is None else torch.tanh(out / cap) * cap

    @property
    def logit_softcap(self) -> float | None:
        """The cap `logits` soft-caps with: the text config's `final_logit_softcapping`, None where it has none."""
        return getattr(self.model.config.get_text_config(), "final_logit_softcapping", None)

    @property
    def image_token_id(self) -> int:
        config = self.model.config
        value = getattr(config, "image_token_id", None)
        return int(value if value is not None else config.image_token_index)

    @property
    def video_token_id(self) -> int:
        config = self.model.config
        value = getattr(config, "video_token_id", None)
        return int(value if value is not None else config.video_token_index)

    def chat_text(self, prompt: str, images: int = 1) -> str:
        """The chat turn with `images` images before the prompt, as text, without the template's BOS where the
        tokenizer adds its own (Gemma's does), so that tokenizing it leaves one BOS, as
        `apply_chat_template(tokenize=True)` does."""
        messages = [{"role": "user", "content": [*({"type": "image"} for _ in range(images)),
                                                 {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        bos = self.tokenizer.bos_token
        return text[len(bos):] if bos and self._adds_bos and text.startswith(bos) else text

    def _process_video(self, video: Video, prompt: str) -> BatchFeature:
        """The processor's inputs for a chat turn of `video` and `prompt`: the frames as sampled (no sampling again),
        with their indices and the clip's rate for processors that write timestamps (Qwen3-VL)."""
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        bos = self.tokenizer.bos_token
        text = text[len(bos):] if bos and self._adds_bos and text.startswith(bos) else text
        metadata = VideoMetadata(total_num_frames=video.indices[-1] + 1, fps=video.fps,
                                 frames_indices=video.indices, height=video.frames[0].height,
                                 width=video.frames[0].width)
        return self.processor(videos=[video.frames], text=[text], return_tensors="pt", do_sample_frames=False,
                              video_metadata=[metadata])

    def _turn(self, prompt: str, images: int) -> str:
        """`chat_text` for `images` images; a family's own `chat_text` that writes one image only is called as it is."""
        return self.chat_text(prompt) if images == 1 else self.chat_text(prompt, images)

    @cached_property
    def _adds_bos(self) -> bool:
        """Whether the tokenizer puts BOS before every text it tokenizes."""
        return self.tokenizer("")["input_ids"][:1] == [self.tokenizer.bos_token_id]

    def encode(self, image: Image.Image | Sequence[Image.Image | Sequence[Image.Image]], prompt: str,
               answer_ids: Sequence[int] = (), scale: float = 1.0):
        """Processor inputs for the chat turn, with `answer_ids` appended (teacher forcing): one row for an image, or
        a row per item of a list, each an image or one prompt's images (`scaled_image`'s outputs at `scale`); rows
        of one size."""
        if not prompt.strip():
            raise UserError("the prompt is empty")
        self.check_text(prompt, "prompt")
        given = [[image]] if isinstance(image, Image.Image) else [row if isinstance(row, Video) else as_images(row)
                                                                   for row in image]
        try:  # one call per row: some processors (Gemma 3, SmolVLM) read a list of images as one prompt's
            rows = [self._process_video(row, prompt) if isinstance(row, Video) else
                    self.processor(images=row, text=[self._turn(prompt, len(row))], return_tensors="pt",
                                   **self.processor_kwargs(max(row, key=_pixels), scale)) for row in given]
        except ValueError as exc:  # the processor's checks of its inputs, e.g. an extreme aspect ratio
            first = given[0].frames[0] if isinstance(given[0], Video) else given[0][0]
            what = "video" if isinstance(given[0], Video) else "image"
            raise UserError(f"the model's processor refused the {first.width}x{first.height} {what}: "
                            f"{str(exc).splitlines()[0]}") from None
        inputs = rows[0] if len(rows) == 1 else BatchFeature({key: _concat([row[key] for row in rows])
                                                               for key in rows[0]})
        if answer_ids:
            rows, length = inputs["input_ids"].shape
            extra = torch.as_tensor(list(answer_ids), dtype=torch.long)[None].expand(rows, -1)
            for key, value in list(inputs.items()):
                if torch.is_tensor(value) and value.shape == (rows, length) and key != "pixel_values":
                    fill = extra if key == "input_ids" else torch.full_like(extra, 1 if key == "attention_mask" else 0)
                    inputs[key] = torch.cat([value, fill.to(value.dtype)], dim=1)
        return inputs.to(device=self.device, dtype=self.model.dtype)  # pixels in the weights' precision

    @torch.no_grad()
    def answer_probabilities(self, images: Sequence[Image.Image | Sequence[Image.Image]], prompt: str,
                             answer_ids: Sequence[int], batch_size: int = 8, scale: float = 1.0) -> Tensor:
        """(B, T): teacher-forced probability of every answer token, for each of several same-size
        images (e.g. progressively masked copies; or each a prompt's images) seen at `scale`, a batch of them per
        forward; float32 logits whatever the model's dtype."""
        answer = torch.as_tensor(list(answer_ids))
        rows = []
        for start in range(0, len(images), batch_size):
            chunk = [self.scaled_images(item, scale)[0] for item in images[start:start + batch_size]]
            inputs = self.encode(chunk, prompt, answer_ids, scale)
            with self._capture(self.final_norm) as hidden:
                self.model(**inputs, use_cache=False, logits_to_keep=1)
            predicting = hidden[-1][:, -len(answer) - 1:-1]  # (b, T, d): from the end, after any prefix rows
            logits = self.logits(predicting.flatten(0, 1)).unflatten(0, (len(chunk), -1))  # (b, T, V)
            probabilities = torch.softmax(logits, -1)
            rows.append(probabilities.gather(2, answer[None, :, None].expand(len(chunk), -1, 1))[..., 0])
        return torch.cat(rows)

    @cached_property
    def control_tokens(self) -> list[str]:
        """The tokenizer's special tokens (chat turns, image placeholders): text that would be read as
        them instead of as text."""
        return [token.content for token in self.tokenizer.added_tokens_decoder.values() if token.special]

    def check_text(self, text: str, what: str) -> None:
        """Refuse user text that holds a control token: it would break the chat turn or the image's
        placeholder tokens instead of being explained as text."""
        found = next((token for token in self.control_tokens if token and token in text), None)
        if found:
            raise UserError(f"the {what} contains the model's control token {found!r}; remove it")

    def tokenize_answer(self, text: str) -> list[int]:
        if not text.strip():
            raise UserError(f"the answer {text!r} is empty: nothing to explain")
        self.check_text(text, "answer")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UserError(f"the answer {text!r} tokenises to nothing")
        return list(ids)

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """The text each token of a sequence adds (with its leading space), for display; the texts join
        to the decoded sequence.

        Decoded incrementally, because byte-level tokenisers split a character (CJK, emoji) over
        several tokens whose bytes alone are no text: such a character shows with the token that
        completes it and the tokens before show nothing.  Bytes that never complete a character
        (invalid, or cut off at the end) show as U+FFFD.
        """
        texts: list[str] = []
        pending: list[int] = []  # tokens since the last one that ended on a whole character
        shown = ""  # the part of `pending`'s text already given to its tokens
        tail = 0  # tokens an unfinished character has spanned so far
        for token in ids:
            pending.append(token)
            text = self.tokenizer.decode(pending, clean_up_tokenization_spaces=False)
            complete = text.rstrip(REPLACEMENT)
            tail = 0 if complete == text else (tail + 1 if len(complete) == len(shown) else 1)
            if tail in (0, _MAX_CHARACTER_TOKENS):  # nothing waits for more bytes, or it never will
                texts.append(text[len(shown):])
                pending, shown, tail = [], "", 0
            else:
                texts.append(complete[len(shown):])
                shown = complete
        if pending:
            texts[-1] += text[len(shown):]
        return texts

    def token_text(self, token: int) -> str:
        """One token's text on its own (e.g. a candidate next token), U+FFFD for a partial character."""
        return self.tokenizer.decode([token], clean_up_tokenization_spaces=False)

    @torch.inference_mode()
    def generate(self, image: Media, prompt: str, max_new_tokens: int = 64,
                 keep_stop: bool = False) -> list[int]:
        """Greedy answer token ids for one prompt's image or images, from the input `trace` sees at scale 1; the
        end-of-turn token that ended the answer is kept with `keep_stop` (TAM's protocol explains it too)."""
        inputs = self.encode([self.scaled_images(image, 1.0)[0]], prompt)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.until_stop(out[0, inputs["input_ids"].shape[1]:].tolist(), keep_stop)

    @torch.no_grad()  # not inference_mode: `last_layer_gradients` may run a grad forward on the trace's inputs
    def generate_trace(self, image: Media, prompt: str, max_new_tokens: int = 64,
                       gradients: bool = False) -> tuple[list[int], Trace | None]:
        """`generate`'s answer ids and the scale-1 trace of prompt + answer made from the generation's own
        final-norm states, kept as it runs: the teacher-forced pass `trace` would repeat, saved.

        The generation runs one decode step more than `max_new_tokens` (a token has a state only once it is
        fed), which changes no token of the answer.  The trace keeps the model's inputs with `gradients`.
        None instead of a trace for an empty answer.
        """
        scaled, boxes = self.scaled_images(image, 1.0)
        inputs = self.encode([scaled], prompt)
        with self._capture(self.final_norm) as states:
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens + 1, do_sample=False)
        length = inputs["input_ids"].shape[1]
        answer = self.until_stop(out[0, length:].tolist()[:max_new_tokens])
        if not answer:
            return answer, None
        ids = self.sequence_ids(inputs, out[0, :length + len(answer)])
        start = len(ids) - len(answer)
        hidden = torch.cat([step[0] for step in states])[:len(ids)].float().cpu()
        views = self.prompt_views(inputs, scaled, boxes, prompt)
        return answer, Trace(
            scale=1.0, input_ids=ids, hidden=hidden, views=views,
            prompt_positions=self._prompt_positions(ids.tolist(), prompt, _vision_end(views), start),
            answer_positions=torch.arange(start, len(ids)),
            inputs=self.encode([scaled], prompt, answer) if gradients else None,
        )

    def until_stop(self, new: list[int], keep_stop: bool = False) -> list[int]:
        """Generated ids up to the first end-of-turn, end-of-text or padding token (included with `keep_stop`)."""
        stops = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id, *self._eos_ids()}
        for i, token in enumerate(new):
            if token in stops:
                return new[:i + keep_stop]
        return new

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)

    @property
    def last_layer(self) -> torch.nn.Module:
        return self.model.model.language_model.layers[-1]

    @contextmanager
    def _capture(self, module: torch.nn.Module, index: int | None = None, detach: bool = True):
        """Record `module`'s output (or its element `index`) during one forward; the hook never outlives it."""
        store: list[Tensor] = []

        def hook(_module, _args, output):
            value = output if index is None else output[index]
            store.append(value.detach() if detach else value)

        handle = module.register_forward_hook(hook)
        try:
            yield store
        finally:
            handle.remove()

    @contextmanager
    def _eager_attention(self):
        """Attention weights need the eager kernel; switch to it for one forward only."""
        config = self.model.config  # each sub-model's own: Gemma 2's text model cannot take the top-level "sdpa";
        # none for a sub-model left out (no audio tower) or without attention (Gemma 4 unified's vision)
        previous = {"": config._attn_implementation,
                    **{key: implementation for key in config.sub_configs
                       if (implementation := getattr(getattr(config, key), "_attn_implementation", None))}}
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(previous)

    def _prompt_positions(self, input_ids: list[int], prompt: str, after: int, before: int) -> Tensor:
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        start = _find_subsequence(input_ids[:before], prompt_ids, after)
        if start >= 0:
            return torch.arange(start, start + len(prompt_ids))
        special = set(self.tokenizer.all_special_ids)  # tokenised differently in context: keep plain text
        return torch.tensor([i for i in range(after, before) if input_ids[i] not in special], dtype=torch.long)

    @torch.no_grad()  # not inference_mode: `last_layer_gradients` runs a grad forward on `Trace.inputs`
    def trace(self, image: Media, prompt: str, answer_ids: Sequence[int],
              scale: float = 1.0, attention: bool = False, gradients: bool = False) -> Trace:
        """One teacher-forced forward over prompt + answer at `scale`; keeps only final-norm states, the
        last layer's attention rows with `attention`, and the model's inputs (pixels on the device)
        with `gradients`, for `last_layer_gradients`."""
        if not answer_ids:
            raise UserError("nothing to explain: the answer is empty")
        if not 0 < scale <= 4:
            raise UserError(f"scale {scale} is outside (0, 4]")
        scaled, boxes = self.scaled_images(image, scale)
        inputs = self.encode([scaled], prompt, answer_ids, scale)
        ids = self.sequence_ids(inputs, inputs["input_ids"][0])
        views = self.prompt_views(inputs, scaled, boxes, prompt, scale)
        length = len(ids)
        answer_positions = torch.arange(length - len(answer_ids), length)
        with self._capture(self.final_norm) as hidden, (self._eager_attention() if attention else _null()):
            with (self._capture(self.last_attention, index=1) if attention else _null()) as weights:
                self.model(**inputs, use_cache=False, logits_to_keep=1)
        attn = None
        if attention:  # (1, heads, L, L) -> mean over heads, the rows that predict each answer token
            attn = weights[0][0].float().mean(0)[answer_positions - 1].cpu()
        return Trace(
            scale=scale, input_ids=ids, hidden=hidden[-1][0].float().cpu(), views=views,
            prompt_positions=self._prompt_positions(ids.tolist(), prompt, _vision_end(views),
                                                    int(answer_positions[0])),
            answer_positions=answer_positions, attention=attn, inputs=inputs if gradients else None,
        )

    def last_layer_gradients(self, trace: Trace) -> tuple[Tensor, Tensor]:
        """Gradient of each answer token's logit w.r.t. the vision tokens' states entering the last
        decoder layer, (T, N, d), and those states (N, d): one forward, one backward per token.  A layer that
        takes several residual streams per token (Hy4's hyper-connections) gives them as one vector of all streams."""
        if trace.inputs is None:
            raise ValueError("the trace has no inputs to differentiate: make it with trace(..., gradients=True)")
        entering: list[Tensor] = []

        def pre_hook(_module, args, kwargs):
            entering.append(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

        handle = self.last_layer.register_forward_pre_hook(pre_hook, with_kwargs=True)
        try:
            with torch.enable_grad(), self._capture(self.final_norm, detach=False) as final:
                self.model(**trace.inputs, use_cache=False, logits_to_keep=1)
        finally:
            handle.remove()
        states = entering[-1]  # (1, L, d): differentiate w.r.t. the graph's own tensor, not a view made after
        positions = trace.answer_positions.to(states.device)
        logits = (final[-1][0][positions - 1] * self.unembedding[trace.answer_ids.to(states.device)]).sum(-1)
        vision = trace.vision_positions.to(states.device)
        grads = [self.token_states(torch.autograd.grad(logit, states, retain_graph=True)[0])[vision].flatten(1)
                 for logit in logits]
        return torch.stack(grads).float().cpu(), self.token_states(states)[vision].detach().flatten(1).float().cpu()

    def token_states(self, entering: Tensor) -> Tensor:
        """(L, ...) the states entering the last layer, one row per token: the batch's one row of (1, L, d).  A layer
        that takes its streams stacked before the batch (Gemma 3n's AltUp) moves them behind the token."""
        return entering[0]


@contextmanager
def _null():
    yield []


class TiledByRule(ModelAdapter):
    """A tiled family whose tiling follows the image's size by the processor's rule (Ovis2's covering grid, LFM2-VL's
    canvas, Unlimited-OCR's canvas): it declares `tiles(size)` ((rows, columns) for a (width, height)) and
    `vision_tokens(size)`, and takes any scale within `max_vision_tokens`; its detail view is the smallest scale with
    the most tokens."""

    beside_tiles: ClassVar[str] = "the thumbnail"  # the view besides the tiles, as a refused scale's message names it

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        raise NotImplementedError

    def vision_tokens(self, size: tuple[int, int]) -> int:
        raise NotImplementedError

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale == 1.0:
            return
        size = scaled_size(image, scale)
        rows, columns = self.tiles(size)
        self.bound_tokens(scale, self.vision_tokens(size), f"{rows}x{columns} tiles and {self.beside_tiles}")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale at which `image` gets the most vision tokens it can within `max_vision_tokens` (1 where
        none gives more)."""
        return most_detailed_scale(image, self.vision_tokens, self.max_vision_tokens)


class DecoderOnModel(ModelAdapter):
    """A family whose decoder sits on `model.model` itself, with no `language_model` (Chameleon, Phi-4-multimodal):
    its final norm and last layer are there."""

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.norm

    @property
    def last_layer(self) -> torch.nn.Module:
        return self.model.model.layers[-1]

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.model.model.layers[-1].self_attn

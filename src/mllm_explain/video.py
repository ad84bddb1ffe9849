"""A video as a model is fed it: the frames its video processor samples, each with its time in seconds.

Files are decoded with PyAV through transformers' own `load_video` (the `video` extra): PyAV's wheels carry FFmpeg,
so nothing else needs installing, and it is transformers' default back-end (decord is unmaintained, OpenCV's wheels
are several times larger, torchcodec needs a system FFmpeg, torchvision no longer reads video).  Frames are chosen by
the model's video processor's own `sample_frames` (its frame rate and frame counts; Qwen2-VL's rounds to whole
temporal patches), so the explanation reads the frames the model would read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mllm_explain.errors import UserError
from mllm_explain.images import as_rgb

DEFAULT_FPS = 2.0  # frames per second where neither the caller nor the video processor names a rate


@dataclass(frozen=True)
class Video:
    """Sampled frames (RGB), each one's index among the clip's frames, and the clip's frame rate."""

    frames: list[Image.Image]
    indices: list[int]
    fps: float

    def __post_init__(self) -> None:
        if not self.frames:
            raise UserError("the video has no frames")
        if len(self.frames) != len(self.indices):
            raise ValueError(f"{len(self.frames)} frames and {len(self.indices)} indices")
        if self.fps <= 0:
            raise UserError(f"fps must be positive, got {self.fps}")

    @property
    def timestamps(self) -> list[float]:
        """Each sampled frame's time in seconds from the start of the clip."""
        return [index / self.fps for index in self.indices]

    @classmethod
    def from_frames(cls, frames: Sequence[Image.Image], fps: float = 1.0) -> Video:
        """A clip given as its frames, all of them read, `fps` a second (frame i at i / fps s)."""
        return cls([as_rgb(frame) for frame in frames], list(range(len(frames))), fps)


def read_video(path: str | Path, sample: Callable[..., Sequence[int]]) -> Video:
    """The frames of the video file at `path` that `sample(metadata)` picks (indices into its frames), with their
    times; a UserError naming what is wrong with the file, or the extra to install."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    try:
        import av  # noqa: F401  (the back-end transformers' load_video calls)
    except ImportError:
        raise UserError("reading video needs PyAV: pip install 'mllm-explain[video]'") from None
    from transformers.video_utils import load_video

    try:
        frames, metadata = load_video(str(path.resolve()), backend="pyav", sample_indices_fn=sample)
    except (ValueError, OSError) as exc:  # PyAV's errors derive from both; the sampler's from ValueError
        raise UserError(f"cannot read video {path}: {str(exc).splitlines()[0]}") from None
    if not len(frames) or not metadata.fps:
        raise UserError(f"cannot read video {path}: no frames with a frame rate")
    return Video([Image.fromarray(frame) for frame in frames], [int(i) for i in metadata.frames_indices],
                 float(metadata.fps))

"""What an explanation holds in memory, predicted from a model's sizes: the bytes of a `Trace`
(checked against `Trace.nbytes` by `bench`) and the float32 working set of the logit-lens methods,
projected for 7B models in docs/PERFORMANCE.md.  Neither depends on depth: a trace keeps one layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mllm_explain.adapters.base import LOGIT_BLOCK_BYTES

FLOAT32, INT64 = 4, 8


@dataclass(frozen=True)
class TraceSizes:
    """The sizes a trace's and a method's memory depend on."""

    vision: int  # N vision tokens
    answer: int  # T answer tokens
    hidden: int  # d, the language model's width
    vocabulary: int  # V, rows of the unembedding
    prompt: int = 8  # P prompt tokens
    template: int = 20  # the other tokens: chat template, image delimiters

    @property
    def length(self) -> int:
        return self.vision + self.prompt + self.template + self.answer


def trace_bytes(sizes: TraceSizes, attention: bool = False) -> int:
    """A trace's tensors: final-norm states of all L positions (float32), the token ids and the three
    position lists (int64), and with `attention` the T last-layer attention rows over L (float32).
    A trace made for gradients also keeps the processor's inputs (pixels), not counted here."""
    s = sizes
    states = FLOAT32 * s.hidden * s.length + INT64 * (s.length + s.vision + s.prompt + s.answer)
    return states + (FLOAT32 * s.answer * s.length if attention else 0)


def method_work_bytes(sizes: TraceSizes, arc: bool = True) -> int:
    """The largest float32 tensors a logit-lens method makes besides the trace: logits at the T
    predicting positions (T, V) and for ARC at the P + T context positions (C, V), on the CPU, and
    while they are computed one block of W in float32 (at most LOGIT_BLOCK_BYTES) with its logits, on
    W's device.  No float32 copy of the whole W (V, d) is made, and no logits over vision positions:
    maps read only the rows of W of the classes explained."""
    s = sizes
    rows = s.answer + (s.prompt + s.answer if arc else 0)  # logit rows: the predicting, then ARC's context positions
    block = min(s.vocabulary, max(1, LOGIT_BLOCK_BYTES // (FLOAT32 * s.hidden)))  # rows of W per block
    return FLOAT32 * rows * s.vocabulary + FLOAT32 * block * (s.hidden + s.prompt + s.answer)


PROJECTIONS = {  # sizes of the real checkpoints (config.json), 128 answer tokens
    "Qwen2-VL-7B, 1200 vision tokens": TraceSizes(vision=1200, answer=128, hidden=3584, vocabulary=152064),
    "Qwen2-VL-2B, 1200 vision tokens": TraceSizes(vision=1200, answer=128, hidden=1536, vocabulary=151936),
    "LLaVA-1.5-7B, 576 vision tokens": TraceSizes(vision=576, answer=128, hidden=4096, vocabulary=32064),
}


def memory_row(name: str, sizes: TraceSizes) -> dict:
    """One row of the table: sizes, trace bytes with and without attention, per answer token, and the
    methods' working set."""
    plain, attended = trace_bytes(sizes), trace_bytes(sizes, attention=True)
    return {"name": name, **asdict(sizes), "length": sizes.length, "trace_bytes": plain,
            "trace_bytes_per_answer_token": plain / sizes.answer, "trace_bytes_with_attention": attended,
            "method_work_bytes": method_work_bytes(sizes)}

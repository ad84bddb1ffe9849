"""`model_type` -> adapter class, filled by `@register_adapter` in each family module, and the census of the
`model_type`s refused, each with its class and why.

Every image-text-to-text `model_type` of the installed transformers is either supported (a key of `ADAPTERS`)
or refused (a key of `REFUSED`); `tests/test_census.py` keeps that true, so a transformers upgrade that adds a
family forces a decision.  The classes (A-F) say how vision input reaches the language model; they and the
layout each class-A/E family needs come from a census of transformers 5.24's modeling and processor code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mllm_explain.adapters.base import ModelAdapter

ADAPTERS: dict[str, type[ModelAdapter]] = {}

ClassLetter = Literal["A", "B", "C", "D", "E", "F"]


@dataclass(frozen=True)
class FamilyClass:
    """How vision input reaches the LM in one class of families.

    `how` completes "<model_type> ..." before "(class X)"; `why` says why a refused family of the class has
    nothing to explain, or is empty for the explainable classes (A, E), whose refusals say what is missing.
    """

    how: str
    why: str = ""


FAMILY_CLASSES: dict[ClassLetter, FamilyClass] = {
    "A": FamilyClass("has vision tokens in the sequence"),
    "B": FamilyClass("reads the image through cross-attention", "its vision features are not in the token sequence"),
    "C": FamilyClass("is an encoder-decoder",
                     "its text decoder reads the image through an encoder, with no vision tokens of its own to map"),
    "D": FamilyClass("compresses the image into learned query tokens",
                     "the queries have no spatial layout to map back onto the image"),
    "E": FamilyClass("has discrete VQ image tokens in the sequence"),
    "F": FamilyClass("is none of the image-to-text kinds the maps need",
                     "there are no vision tokens whose positions map onto the image"),
}
EXPLAINABLE: frozenset[ClassLetter] = frozenset({"A", "E"})  # vision tokens in the sequence: a layout is enough


@dataclass(frozen=True)
class Refusal:
    """Why one `model_type` is refused.

    `family`: its class.  `detail`: for A/E, what its layout needs (a phrase after "needs"); for B/C/D/F, why
    there is nothing spatial to explain, when more specific than the class's `why`.  `how` overrides the
    class's `how` (class F families differ).  `fails`: for a family of an explainable class that cannot run
    (measured), how it fails; it replaces "not supported yet".
    """

    family: ClassLetter
    detail: str = ""
    how: str = ""
    fails: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILY_CLASSES:
            raise ValueError(f"unknown class {self.family!r}")
        if self.family in EXPLAINABLE and not (self.detail or self.fails):
            raise ValueError(f"a class {self.family} refusal says what its layout needs, or how it fails")

    def reason(self, model_type: str) -> str:
        """The one line `load_model` shows after "is not supported: "."""
        family = FAMILY_CLASSES[self.family]
        head = f"{model_type} {self.how or family.how} (class {self.family})"
        if self.fails:
            return f"{head}, but {self.fails}"
        if self.family in EXPLAINABLE:
            return f"{head}, not supported yet: needs {self.detail}"
        return f"{head}: {self.detail or family.why}"


def _each(family: ClassLetter, detail: str, *model_types: str) -> dict[str, Refusal]:
    return {model_type: Refusal(family, detail) for model_type in model_types}


_QWEN3 = "the qwen3_vl layout as-is"
_QWEN2 = "the qwen2_vl layout as-is"

# The refused `model_type`s by class, from the census of transformers 5.24's image-text-to-text mapping plus
# the three image-taking multimodal-LM extras (phi4_multimodal, qwen2_5_omni, qwen3_omni_moe).  A type that
# gains an adapter leaves this dict (`load_model` checks REFUSED first; tests/test_census.py fails on both).
REFUSALS: dict[str, Refusal] = {
    # A: reuse an existing layout as-is
    "shieldgemma2": Refusal("A", fails="its processor (ShieldGemma2Processor) ignores the prompt: whatever text it is "
                                        "given, it writes one of its safety-policy prompts per row (three by default), "
                                        "so no prompt's answer can be explained"),
    # A: an existing layout kind with a parameter or geometry tweak
    "fast_vlm": Refusal("A", fails="transformers registers no processor for it (its conversion script, not in the "
                                   "wheel, writes LLaVA's: CLIP's, 1024 px, 16x16 tokens), and its layout is not "
                                   "verified: a tiny random FastViTHD tower (timm's `fastvit_mci3`) spreads a painted "
                                   "region over its whole feature map, so the layout test cannot show where its tokens "
                                   "sit"),
    # A: a new layout kind
    "llama4": Refusal("A", fails="transformers 5.x cannot run Llama4ForConditionalGeneration's forward (it reads "
                                 "`image_outputs` from an output that has none), so there is nothing to explain"),
    # B, C, D: nothing spatial to explain
    **_each("B", "", "mllama", "idefics"),
    **_each("C", "", "blip", "florence2", "pix2struct", "pp_formulanet", "t5gemma2", "udop",
            "vision-encoder-decoder"),
    **_each("D", "", "aria", "blip-2", "idefics2", "instructblip", "instructblipvideo", "kosmos-2", "kosmos-2.5"),
    "deepseek_ocr2": Refusal("D", "its learned, causally ordered queries are not patch-aligned, so they have no "
                                  "verified spatial layout"),
    # F: other
    "diffusion_gemma": Refusal("F", "its tokens are not written left to right, so no next-token prediction "
                                    "reads the vision tokens", how="generates by block diffusion"),
    "evolla": Refusal("F", "there is no image to explain", how="reads protein sequences and structures"),
    "mistral4": Refusal("F", "there is no vision input to explain",
                        how="is a text-only causal LM, Mistral4ForCausalLM"),
    "pi0": Refusal("F", "its output is robot actions, not text tokens to explain",
                   how="is a robot policy, PaliGemma with a flow-matching action expert"),
}

# `model_type` -> the one-line reason `load_model` shows ("model type 'X' is not supported: <reason>")
REFUSED: dict[str, str] = {model_type: refusal.reason(model_type) for model_type, refusal in REFUSALS.items()}


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    for model_type in cls.model_types:
        ADAPTERS[model_type] = cls
    return cls

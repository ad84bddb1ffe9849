"""GIT (`GitForCausalLM`): a CLIP ViT at one fixed square (224 px / 16 px patches: 14x14) whose output, CLS first,
is projected and *prepended* to a BERT-style decoder's text embeddings.  No placeholder token stands for the image:
the decoder's sequence is [CLS feature, 14x14 patch features, text], one row longer than `input_ids` per feature
(`prefix_length`), and the image rows attend to each other both ways while the text is causal.  The text has its
own position embeddings from 0; the image rows have none in the decoder.

The view is the patch grid, row-major, at rows 1..gh*gw; the CLS feature (row 0) summarises the whole image and is
in no view, as LLaVA drops it.  In a trace the prefix rows read as `[PAD]` (`image_token_id`), there being no id.

The turn is GIT's VQA input: `[CLS]` (the BOS `generate` starts a caption with) then the prompt, no `[SEP]`; the
model answers and ends with `[SEP]`, its EOS.  The processor is CLIP's (shortest side resized, centre crop) and a
BERT tokenizer, with no chat template.  The decoder is post-norm: the last layer's output norm is the final norm, and
the LM head has a bias, which `logits` adds.

Scales as LLaVA-1.5 (the letterboxed square; above 1 fed enlarged, CLIP's position embeddings interpolated, which
`GitModel` passes on to its vision tower).  `generate` runs at scale 1 only: transformers widens its decoding steps'
mask by the config's fixed count of image rows.  Several frames (`num_image_with_embedding`, GIT's video
checkpoints: frames' features concatenated with a temporal embedding each) are not read: one image per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import Tensor

from mllm_explain.adapters.llava import LlavaAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View

CLS_FEATURES = 1  # the ViT's CLS feature, before its patches


@register_adapter
class GitAdapter(LlavaAdapter):
    model_types = {"git": "microsoft/git-base"}
    several_images = False  # one image's features prefix the text: no placeholders to place several by
    layout_text = ("one fixed 14x14 CLIP grid, the image letterboxed into it; its features (CLS first, not mapped) "
                   "prepended to the text, with no placeholder tokens")
    scales_text = ("as LLaVA-1.5: below 1 the image shrunk inside the square; above 1 the square fed at s x 224 px "
                   "with CLIP's position embeddings interpolated (2x: a 28x28 grid); within `max_vision_tokens`")

    def prefix_length(self, inputs) -> int:
        """The CLS feature and the patch grid, which the model puts before the text's embeddings."""
        gh, gw = self.vision_grid(inputs)
        return CLS_FEATURES + gh * gw

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The patch grid, the prefix's rows after the CLS feature."""
        gh, gw = self.vision_grid(inputs)
        return [View(torch.arange(CLS_FEATURES, CLS_FEATURES + gh * gw), (gh, gw), grid_box=grid_box)]

    @property
    def image_token_id(self) -> int:
        """The id the prefix rows read as in a trace: `[PAD]`, the image having no token."""
        return self.tokenizer.pad_token_id

    def chat_text(self, prompt: str) -> str:
        """GIT's VQA input: `[CLS]` then the prompt (the tokenizer adds no `[SEP]`: `processor_kwargs`)."""
        return f"{self.tokenizer.cls_token}{prompt}"

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """LLaVA's lifted sizes, no special tokens added (`chat_text` writes `[CLS]`), and no BERT `token_type_ids`,
        which the model does not read."""
        return {**super().processor_kwargs(image, scale), "add_special_tokens": False,
                "return_token_type_ids": False}

    @torch.no_grad()
    def logits(self, states: Tensor, block_rows: int | None = None) -> Tensor:
        """The base's logits plus the LM head's bias, as the model computes its own (GIT has no soft-capping)."""
        return super().logits(states, block_rows) + self.model.get_output_embeddings().bias.float().cpu()

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """WordPiece texts: each token's text is what decoding adds after the token before it (a `##` piece joins
        it, any other token starts with a space), so that the texts join to the decoded sequence."""
        cls = self.tokenizer.cls_token_id
        return [self.tokenizer.decode([before, token], clean_up_tokenization_spaces=False)[
                    len(self.tokenizer.decode([before], clean_up_tokenization_spaces=False)):]
                for before, token in zip([cls, *ids[:-1]], ids)]

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.git.encoder.layer[-1].output.LayerNorm

    @property
    def last_layer(self) -> torch.nn.Module:
        return self.model.git.encoder.layer[-1]

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.model.git.encoder.layer[-1].attention.self

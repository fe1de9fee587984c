"""Image-text reward models for I4VGen's anchor selection: CLIP-family checkpoints scored by CLIP score.

The paper ranks its candidate anchor images with ImageReward (BLIP-based, shipped as a pickle). We use
what transformers loads directly and safely instead: any ``CLIPModel`` checkpoint, scored with the CLIP
score PickScore defines — the cosine similarity of the image and prompt embeddings times the model's
learned logit scale. PickScore_v1 is such a checkpoint (a fine-tuned CLIP-H), so is plain CLIP.

Loading follows the pack's rules: safetensors only, local files only, no remote code. The model stays
on the CPU between uses and visits the compute device only while it scores, so it never competes with
the video backbone for accelerator memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..loading.parts import load_tokenizer, transformers_part
from ..loading.file_checks import ModelFileError, loading, read_json

TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("tokenizer.json",))
PROCESSOR_FILE = "preprocessor_config.json"
EXAMPLES = "PickScore_v1 (yuvalkirstain/PickScore_v1) or openai/clip-vit-large-patch14"


@dataclass
class RewardModel:
    """A CLIP model with its tokenizer and image processor, on the CPU until it scores."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    processor: object

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompt: str, device: torch.device | str = "cpu",
              chunk: int = 16) -> list[float]:
        """CLIP score of each IMAGE ``[N, H, W, 3]`` (0..1) against ``prompt``: logit scale × cosine.

        Images go through the model a chunk at a time; the model returns to the CPU afterwards.
        """
        device = torch.device(device)
        dtype = next(self.model.parameters()).dtype
        length = self.model.config.text_config.max_position_embeddings
        text = self.tokenizer(prompt, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
        self.model.to(device)
        try:
            scores = []
            for start in range(0, images.shape[0], chunk):
                batch = images[start:start + chunk].detach().float().cpu().permute(0, 3, 1, 2)
                pixels = self.processor(images=list(batch), do_rescale=False, return_tensors="pt").pixel_values
                out = self.model(input_ids=text.input_ids.to(device), attention_mask=text.attention_mask.to(device),
                                 pixel_values=pixels.to(device, dtype))
                scores += out.logits_per_image[:, 0].float().cpu().tolist()
            return scores
        finally:
            self.model.to("cpu")


def _check_folder(folder: Path) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelFileError(f"'{folder}' has no config.json: a reward model is a transformers CLIP folder such as "
                             f"{EXAMPLES}.")
    model_type = read_json(config_path).get("model_type")
    if model_type != "clip":
        raise ModelFileError(f"'{folder.name}' is a '{model_type}' model, not a CLIP-family model. The reward model "
                             f"must be a CLIPModel checkpoint, e.g. {EXAMPLES}.")
    if not any(all((folder / f).is_file() for f in group) for group in TOKENIZER_FILES):
        raise ModelFileError(f"'{folder.name}' has no tokenizer files (vocab.json + merges.txt, or tokenizer.json). "
                             "PickScore_v1 uses the tokenizer of laion/CLIP-ViT-H-14-laion2B-s32B-b79K: copy those "
                             "files into the same folder.")
    if not (folder / PROCESSOR_FILE).is_file():
        raise ModelFileError(f"'{folder.name}' has no {PROCESSOR_FILE} (the image preprocessing settings). "
                             "PickScore_v1 uses the one of laion/CLIP-ViT-H-14-laion2B-s32B-b79K: copy it into the "
                             "same folder.")


def load_reward_model(folder: str | Path, dtype: torch.dtype = torch.float32) -> RewardModel:
    """Load a CLIP-family reward model from a local folder; refuses anything else with the reason."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer
    folder = Path(folder)
    _check_folder(folder)
    model = transformers_part(CLIPModel, folder, dtype, "The reward model")
    model.eval().requires_grad_(False)
    tokenizer = load_tokenizer(CLIPTokenizer, folder, "The reward model's tokenizer")
    with loading(folder, "The reward model's image processor"):
        processor = CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    return RewardModel(name=folder.name, model=model, tokenizer=tokenizer, processor=processor)

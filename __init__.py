"""Zero-Shot Video: a ComfyUI node pack that turns pretrained text-to-video diffusion models into zero-shot
image-to-video and unlimited-length video generators (TI2V-Zero, FIFO-Diffusion, I4VGen)."""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

"""Zero-Shot Video: a ComfyUI node pack that turns pretrained text-to-video diffusion models into zero-shot
image-to-video and unlimited-length video generators (TI2V-Zero, FIFO-Diffusion, I4VGen)."""
from functools import partial

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .nodes.comfy_glue import add_prompt_handler
from .nodes.inputs import flag_non_booleans

WEB_DIRECTORY = "./js"

# ComfyUI turns an API prompt's "false" for a BOOLEAN input into True before any validation sees it: this
# handler records such values so that the node's validation refuses them instead.
add_prompt_handler(partial(flag_non_booleans, node_classes=NODE_CLASS_MAPPINGS))

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

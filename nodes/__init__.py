"""ComfyUI node classes of the pack: thin translators over ``core``."""
from .backbone_nodes import LoadT2VBackbone, T2VTextEncode
from .t2v_nodes import DecodeVideoLatent, T2VSampler

NODE_CLASSES = [LoadT2VBackbone, T2VTextEncode, T2VSampler, DecodeVideoLatent]

NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in NODE_CLASSES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadT2VBackbone": "Load T2V Backbone",
    "T2VTextEncode": "T2V Text Encode",
    "T2VSampler": "T2V Sampler",
    "DecodeVideoLatent": "Decode Video Latent",
}

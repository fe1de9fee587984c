"""The example workflows, one description each; ``python tools/workflows.py`` turns every entry of
WORKFLOWS into its UI graph and its API prompt, so adding a workflow means adding one description here.

A description has:
- ``name``: the file name under workflows/ and workflows/api/;
- ``note``: the text of the Note node at the top left: what the workflow demonstrates, which models it
  needs and where they go;
- ``columns``: the graph left to right, each column a list of nodes top to bottom. A node has an ``id``
  (permanent: API clients address inputs as ``<id>.<input>``), a ``type`` (node class), a ``group`` (the
  titled box it sits in; consecutive columns may share one) and ``inputs`` by name: a widget value, or
  ``(source node id, output index)`` for a link. Widgets left out take the node's default; model names
  are always given, as the names ``core/standin_models.py`` writes, so the API prompt runs unchanged
  against the stand-ins in tier-2 tests. Optional: ``title``, ``size`` ([width, height]).
"""
from zeroshot_video.core import standin_models as models

T2V_BASIC = {
    "name": "t2v_basic",
    "note": (
        "Plain text-to-video: the baseline every other workflow of this pack builds on.\n"
        "Load T2V Backbone → T2V Text Encode → T2V Sampler (16 frames, 256×256, 25 DDIM steps, "
        "guidance 9) → Decode Video Latent → Create Video (8 fps) → Save Video (mp4, h264, in "
        "output/zeroshot_video/).\n\n"
        f"Model: ModelScope text-to-video 1.7B (ali-vilab/text-to-video-ms-1.7b, diffusers format) as the "
        f"folder models/diffusers/{models.MODELSCOPE}/ (the folder holding model_index.json). Zeroscope v2 "
        f"works the same way at 576×320."
    ),
    "columns": [
        [{"id": 1, "type": "LoadT2VBackbone", "group": "Model",
          "inputs": {"model": models.MODELSCOPE, "motion_adapter": "none", "dtype": "auto"}}],
        [{"id": 2, "type": "T2VTextEncode", "group": "Prompt", "size": [400, 260],
          "inputs": {"backbone": (1, 0),
                     "prompt": "a red panda eating bamboo in a sunny forest, high quality",
                     "negative_prompt": "blurry, low quality, watermark, text"}}],
        [{"id": 3, "type": "T2VSampler", "group": "Sample",
          "inputs": {"backbone": (1, 0), "conditioning": (2, 0), "frames": 16, "width": 256, "height": 256,
                     "steps": 25, "guidance": 9.0, "seed": 42}}],
        [{"id": 4, "type": "DecodeVideoLatent", "group": "Decode and save",
          "inputs": {"backbone": (1, 0), "latent": (3, 0)}},
         {"id": 5, "type": "CreateVideo", "group": "Decode and save", "inputs": {"images": (4, 0), "fps": 8}}],
        [{"id": 6, "type": "SaveVideo", "group": "Decode and save", "size": [420, 440],
          "inputs": {"video": (5, 0), "filename_prefix": "zeroshot_video/t2v_basic", "format": "mp4",
                     "codec": "h264"}}],
    ],
}

WORKFLOWS = [T2V_BASIC]

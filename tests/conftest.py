"""Shared fixtures: tiny random stand-in models written to a temporary ComfyUI-style models folder and
loaded back through LoadT2VBackbone's own code, as a user's models would be."""
from __future__ import annotations

import logging
import os

import pytest
import torch

from zeroshot_video.testing import standin_models, standins

logging.getLogger("diffusers").setLevel(logging.ERROR)
logging.getLogger("transformers").setLevel(logging.ERROR)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    standins.write_all(root, vae_blocks=standin_models.REAL_VAE_BLOCKS)  # sizes as real models have them
    return root


@pytest.fixture(scope="session", autouse=True)
def _models_env(models_dir):
    """Point the node layer's model folders (outside ComfyUI) at the stand-ins."""
    previous = os.environ.get("ZEROSHOT_VIDEO_MODELS")
    os.environ["ZEROSHOT_VIDEO_MODELS"] = str(models_dir)
    yield
    if previous is None:
        os.environ.pop("ZEROSHOT_VIDEO_MODELS", None)
    else:
        os.environ["ZEROSHOT_VIDEO_MODELS"] = previous


def _load(**kwargs):
    from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
    kwargs.setdefault("motion_adapter", "none")
    kwargs.setdefault("dtype", "fp32")
    return LoadT2VBackbone().load(**kwargs)[0]


@pytest.fixture(scope="session")
def modelscope(_models_env):
    """LoadedBackbone (node-level handle) of the tiny ModelScope-family model."""
    return _load(model=standin_models.MODELSCOPE)


@pytest.fixture(scope="session")
def animatediff(_models_env):
    """LoadedBackbone of tiny SD1.5 + motion adapter folder."""
    return _load(model=standin_models.SD15, motion_adapter=standin_models.MOTION_ADAPTER)


@pytest.fixture(scope="session")
def animatediff_ip(_models_env):
    """LoadedBackbone of tiny SD1.5 + single-file motion adapter + IP-Adapter Plus + CLIP image encoder."""
    return _load(model=standin_models.SD15, motion_adapter=standin_models.MOTION_ADAPTER_FILE,
                 ip_adapter=standin_models.IP_ADAPTER, image_encoder=standin_models.IMAGE_ENCODER)


@pytest.fixture(params=["modelscope", "animatediff"])
def backbone(request):
    """Both families' engine-level Backbone, on the CPU."""
    return request.getfixturevalue(request.param).ready()

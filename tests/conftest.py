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
def unet_backbone(request):
    """Both UNet families' engine-level backbone, on the CPU (for what only a UNet has: resnet hooks, diffusers'
    UNet pipelines)."""
    return request.getfixturevalue(request.param).ready()


FAMILIES = {"modelscope": standin_models.MODELSCOPE, "animatediff": standin_models.SD15,
            "wan21": standin_models.WAN21, "wan22_a14b": standin_models.WAN22_A14B,
            "wan22_ti2v_5b": standin_models.WAN22_TI2V}
"""Every family and variant the pack runs, by the stand-in folder LoadT2VBackbone loads it from."""


@pytest.fixture(scope="session")
def loaded_families(_models_env):
    """The LoadedBackbone of each family's stand-in, loaded once per session."""
    cache = {}

    def load(family):
        if family not in cache:
            adapter = standin_models.MOTION_ADAPTER if family == "animatediff" else "none"
            cache[family] = _load(model=FAMILIES[family], motion_adapter=adapter)
        return cache[family]
    return load


@pytest.fixture(params=list(FAMILIES))
def family_handle(request, loaded_families):
    """The node-level handle of every family: ModelScope, AnimateDiff, Wan 2.1, Wan 2.2 A14B, Wan 2.2 TI2V-5B."""
    return loaded_families(request.param)


@pytest.fixture
def backbone(family_handle):
    """Every family's engine-level backbone, on the CPU: the method tests run over it."""
    return family_handle.ready()

"""Every stand-in model, under the names the shipped workflows use (``make-test-models``): the folders of
``standin_models`` and the same weights again as ComfyUI's single files (``standin_files_wan``, ``_sd15``)."""
from __future__ import annotations

import os
from pathlib import Path

from safetensors.torch import save_file

from . import standin_models as m
from .standin_files_sd15 import write_sd15_files
from .standin_files_wan import write_wan_files


def write_all(models_dir: str | os.PathLike, vae_blocks=m.WORKFLOW_VAE_BLOCKS) -> list[Path]:
    """Write every stand-in under ``models_dir`` (a ComfyUI ``models/`` folder); returns what was written."""
    root = Path(models_dir)
    written = [root / "diffusers" / m.MODELSCOPE, root / "diffusers" / m.ZEROSCOPE, root / "diffusers" / m.SD15]
    m.write_modelscope(written[0], vae_blocks=vae_blocks)
    m.write_modelscope(written[1], vae_blocks=vae_blocks)
    m.write_sd15(written[2], vae_blocks=vae_blocks)

    adapter = m.tiny_motion_adapter()
    adapter_dir = root / "animatediff_models" / m.MOTION_ADAPTER
    adapter.save_pretrained(adapter_dir, safe_serialization=True)
    single = root / "animatediff_models" / m.MOTION_ADAPTER_FILE
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, single)
    single.with_suffix(".json").write_text((adapter_dir / "config.json").read_text())
    written += [adapter_dir, single]

    ip = root / "ipadapter" / m.IP_ADAPTER
    ip.parent.mkdir(parents=True, exist_ok=True)
    save_file(m.tiny_ip_adapter_plus(m.tiny_unet2d()), ip)
    encoder = root / "clip_vision" / m.IMAGE_ENCODER
    encoder.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in m.tiny_image_encoder().state_dict().items()}, encoder)
    written += [ip, encoder]
    m.write_reward_model(root / "reward_models" / m.REWARD_MODEL)
    written.append(root / "reward_models" / m.REWARD_MODEL)
    # the same models again as the single files ComfyUI keeps
    return written + m.write_wan(root) + write_wan_files(root) + write_sd15_files(root, vae_blocks=vae_blocks)

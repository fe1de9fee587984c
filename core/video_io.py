"""Writing frames to an animated file without ComfyUI (the demo command, streamed FIFO frames)."""
from __future__ import annotations

from pathlib import Path

import torch


def to_uint8(frames: torch.Tensor):
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_video(frames: torch.Tensor, path: str | Path, fps: int = 8) -> Path:
    """``frames`` ``[F, H, W, 3]`` in 0..1 → .webp / .gif (Pillow) or .mp4 (PyAV, when installed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(frames)
    if path.suffix == ".mp4":
        try:
            import av
        except ImportError:
            raise RuntimeError("Writing .mp4 needs PyAV (pip install av); or choose a .webp / .gif file.") from None
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = pixels.shape[1] // 2 * 2, pixels.shape[2] // 2 * 2
            stream.pix_fmt = "yuv420p"
            for frame in pixels:
                image = av.VideoFrame.from_ndarray(frame[:stream.height, :stream.width], format="rgb24")
                container.mux(stream.encode(image))
            container.mux(stream.encode())
        return path
    if path.suffix not in (".webp", ".gif"):
        raise ValueError(f"Unsupported video file type '{path.suffix}': use .webp, .gif or .mp4")
    from PIL import Image
    images = [Image.fromarray(frame) for frame in pixels]
    options = {"lossless": True} if path.suffix == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, **options)
    return path

"""The images the example workflows load (workflows/inputs/), drawn here so that they are our own and can be
remade: a still scene for the image-to-video workflows and a short clip of it for video prediction.

    python tools/example_inputs.py

ComfyUI's Load Image lists the files of its input/ folder: copy these there (or upload your own in the
node). The tier-2 tests copy them into the test server's input/ folder.
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

INPUTS = Path(__file__).resolve().parents[1] / "workflows" / "inputs"
STILL = "zeroshot_video_scene.png"
CLIP = "zeroshot_video_clip.png"  # an animated PNG: Load Image returns its frames as one IMAGE batch
CLIP_FRAMES, CLIP_SIDE = 4, 256


def scene(side: int, ball_x: float) -> Image.Image:
    """Evening sky over green hills with a red ball; ``ball_x`` (0..1) places the ball."""
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    horizon = int(side * 0.62)
    for y in range(horizon):
        f = y / horizon
        draw.line([(0, y), (side, y)], fill=(int(40 + 200 * f), int(70 + 120 * f), int(160 + 60 * f)))
    sun = side * 0.74, side * 0.3, side * 0.09
    draw.ellipse([sun[0] - sun[2], sun[1] - sun[2], sun[0] + sun[2], sun[1] + sun[2]], fill=(255, 214, 120))
    for y in range(horizon, side):
        f = (y - horizon) / (side - horizon)
        draw.line([(0, y), (side, y)], fill=(int(70 - 30 * f), int(140 - 50 * f), int(60 - 20 * f)))
    hill = [(x, horizon - side * 0.08 * (1 + math.sin(x / side * 2 * math.pi * 1.5))) for x in range(0, side + 1, 4)]
    draw.polygon(hill + [(side, horizon + 1), (0, horizon + 1)], fill=(58, 120, 52))
    r = side * 0.07
    cx, cy = side * (0.15 + 0.7 * ball_x), side * 0.8
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(200, 40, 35))
    draw.ellipse([cx - r * 0.5, cy - r * 0.6, cx - r * 0.1, cy - r * 0.2], fill=(235, 120, 110))
    return image


def main() -> None:
    INPUTS.mkdir(parents=True, exist_ok=True)
    scene(512, 0.2).save(INPUTS / STILL, optimize=True)
    frames = [scene(CLIP_SIDE, 0.1 + 0.08 * i) for i in range(CLIP_FRAMES)]
    frames[0].save(INPUTS / CLIP, save_all=True, append_images=frames[1:], duration=125, loop=0, optimize=True)
    for name in (STILL, CLIP):
        print(INPUTS / name, (INPUTS / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()

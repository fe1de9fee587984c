"""Input checks shared by the nodes and the command line; each message says what to change."""
from __future__ import annotations

LATENT_MULTIPLE = 8


def check_size(width: int, height: int) -> None:
    bad = [f"{name} {value}" for name, value in (("width", width), ("height", height))
           if value is not None and (value < LATENT_MULTIPLE or value % LATENT_MULTIPLE)]
    if bad:
        raise ValueError(f"{' and '.join(bad)}: width and height must be positive multiples of {LATENT_MULTIPLE} "
                         "(the VAE works on 8×8 pixel blocks).")


def check_steps(steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def check_frames(backbone, frames: int) -> None:
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    limit = backbone.max_frames
    if limit is not None and frames > limit:
        raise ValueError(f"{backbone.name} (AnimateDiff) takes at most {limit} frames in one call; got {frames}. "
                         "For longer videos use RepeatAndSlideSampler or FIFOQueueWithImageEmbed.")

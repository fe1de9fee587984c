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


def check_frames(backbone, frames: int, what: str = "frames") -> None:
    """A video-frame count for one model call: one the VAE can represent, within the backbone's window."""
    if frames < 1:
        raise ValueError(f"{what} must be at least 1, got {frames}")
    backbone.check_video_frames(frames, what)
    check_latent_frames(backbone, backbone.latent_frames(frames))


def check_latent_frames(backbone, latent_frames: int) -> None:
    limit = backbone.max_frames
    if limit is not None and latent_frames > limit:
        raise ValueError(f"{backbone.name} ({backbone.family}) takes at most {backbone.video_frames(limit)} frames in "
                         f"one call; got {backbone.video_frames(latent_frames)}. For longer videos use "
                         "RepeatAndSlideSampler or FIFOQueueWithImageEmbed.")

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


def latent_origin(backbone) -> dict:
    """What a video latent carries about the backbone that made it, for :func:`check_video_latent`."""
    return {"family": backbone.family, "name": backbone.name, "channels": int(backbone.channels)}


def _describe(origin: dict) -> str:
    return f"{origin['name']} ({origin['family']}, {origin['channels']} latent channels)"


def check_video_latent(backbone, shape: tuple, origin: dict | None, what: str = "The latent", hint: str = "") -> None:
    """A video latent ``[B, C, F, h, w]`` this backbone can take, refused before any work with what to change.

    A latent means something in the latent space it was made in. Wan's causal VAE (16 channels; TI2V-5B's 48) and
    the SD VAE of ModelScope and AnimateDiff (4 channels) differ outright; the two SD-VAE families share a layout,
    so a latent passed between them runs without any error, and such a link is far more often a wiring mistake
    than a plan. The rule is therefore the strict one: a latent whose ``origin`` (:func:`latent_origin`) names
    another family or another channel count is refused, naming both backbones (to cross on purpose, decode and
    re-encode). A latent without an origin (from other packs' nodes) is checked for its channel count only. An
    empty latent is refused where it enters, not when a later node finds nothing to save."""
    shape = tuple(int(side) for side in shape)
    if len(shape) != 5:
        raise ValueError(f"{what} is not a video latent [batch, channels, frames, height, width] (samples shaped "
                         f"{shape}): connect a LATENT made by this pack's nodes.{hint}")
    here = latent_origin(backbone)
    if isinstance(origin, dict) and {"family", "name", "channels"} <= origin.keys() and (
            origin["family"] != here["family"] or origin["channels"] != here["channels"]):
        raise ValueError(f"{what} was made by {_describe(origin)}, but this node's backbone is {_describe(here)}: a "
                         "latent only fits the model family whose VAE made it. Connect the same backbone to both "
                         f"nodes, or decode the video with {origin['name']} and encode its frames with "
                         f"EncodeAnchorImage on {here['name']}.")
    if shape[1] != here["channels"]:
        raise ValueError(f"{what} has {shape[1]} latent channels, but {_describe(here)} takes {here['channels']}: "
                         f"connect a latent made with this backbone.{hint}")
    if 0 in shape:
        raise ValueError(f"{what} is empty (samples shaped {shape}, no {'frames' if shape[2] == 0 else 'values'}): "
                         "connect a latent that holds a video.")
